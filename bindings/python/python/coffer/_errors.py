"""Coffer's exceptions: one class per error kind, under :class:`CofferError`.

Each class also inherits the built-in exception that Python code already catches for that kind
of failure (``ValueError``, ``PermissionError``, ``LookupError``, ``OSError``...). Codes match
``tests/vectors/errors.json``, the C ``COFFER_STATUS_*`` values and ``coffer::ErrorKind``.
Messages never contain customer data.
"""

from __future__ import annotations

from typing import Any, Dict, Optional, Type


class CofferError(Exception):
    """Base class of every error Coffer raises. ``code`` is the stable numeric code."""

    code: int = 0
    kind: str = ""

    def __init__(self, message: str, code: Optional[int] = None) -> None:
        super().__init__(message)
        self.message = message
        if code is not None and code != type(self).code:
            self.code = code


class InternalError(CofferError, RuntimeError):
    """A bug in Coffer, or a panic caught at the language boundary."""

    code, kind = 1, "internal"


class InvalidArgumentError(CofferError, ValueError):
    """An argument is missing, of the wrong type or out of range."""

    code, kind = 2, "invalid_argument"


class MalformedError(CofferError, ValueError):
    """Input is not well-formed JSON, TOML or UTF-8, or does not have the expected shape."""

    code, kind = 3, "malformed"


class LimitExceededError(CofferError, ValueError):
    """Input exceeds a documented size or count limit."""

    code, kind = 4, "limit_exceeded"


class ValidationError(CofferError, ValueError):
    """A customer record failed validation; :attr:`report` lists every problem."""

    code, kind = 5, "validation"
    _report: Optional[Dict[str, Any]] = None

    @property
    def report(self) -> Dict[str, Any]:
        """The validation report: ``{"valid": False, "issues": [...]}``."""
        return self._report if self._report is not None else {"valid": False, "issues": []}


class SchemaError(CofferError, ValueError):
    """A schema document is invalid."""

    code, kind = 6, "schema"


class PolicyError(CofferError, ValueError):
    """A policy document is invalid."""

    code, kind = 7, "policy"


class AccessDeniedError(CofferError, PermissionError):
    """The access policy denies the request."""

    code, kind = 8, "access_denied"


class RateLimitedError(CofferError, PermissionError):
    """A rate limit was exceeded."""

    code, kind = 9, "rate_limited"


class IntegrityError(CofferError):
    """A ciphertext, envelope or signature failed its integrity check."""

    code, kind = 10, "integrity"


class UnsupportedVersionError(CofferError, ValueError):
    """A format or store version this build does not read."""

    code, kind = 11, "unsupported_version"


class KeyNotFoundError(CofferError, LookupError):
    """A key that the operation needs is not in the key store."""

    code, kind = 12, "key_not_found"


class WrongMasterKeyError(CofferError, PermissionError):
    """The master key does not open this key store."""

    code, kind = 13, "wrong_master_key"


class ShreddedError(CofferError, LookupError):
    """The data key was destroyed; the value is gone for good."""

    code, kind = 14, "shredded"


class RetentionError(CofferError):
    """A retention rule forbids the operation, or a retention document is invalid."""

    code, kind = 15, "retention"


class LegalHoldError(CofferError):
    """A legal hold blocks the operation."""

    code, kind = 16, "legal_hold"


class ApprovalError(CofferError, PermissionError):
    """An approval is missing, duplicated or given by a role that may not approve."""

    code, kind = 17, "approval"


class NotFoundError(CofferError, LookupError):
    """A named object (subject, record, hold, list) does not exist."""

    code, kind = 18, "not_found"


class StoreError(CofferError, OSError):
    """The embedded store failed."""

    code, kind = 19, "store"


class StoreBusyError(CofferError, OSError):
    """The store is locked by another process or connection."""

    code, kind = 20, "store_busy"


class ReadOnlyError(CofferError, OSError):
    """The store is read-only."""

    code, kind = 21, "read_only"


class AuditError(CofferError):
    """An audit entry could not be written; the operation was not carried out."""

    code, kind = 22, "audit"


class AuditTamperedError(CofferError):
    """Audit verification found a changed, removed, inserted or reordered entry."""

    code, kind = 23, "audit_tampered"


class IoError(CofferError, OSError):
    """A file could not be read or written."""

    code, kind = 24, "io"


class ClosedError(CofferError, ValueError):
    """The handle was closed."""

    code, kind = 25, "closed"


class UnsupportedError(CofferError, NotImplementedError):
    """The operation is not supported by this build or configuration."""

    code, kind = 26, "unsupported"


class StoreUnavailableError(CofferError, ConnectionError):
    """The store's server cannot be reached (down, restarting, connection lost); nothing was
    done, and the same call can be retried once it is back."""

    code, kind = 27, "store_unavailable"


_BY_CODE: Dict[int, Type[CofferError]] = {
    cls.code: cls
    for cls in (
        InternalError, InvalidArgumentError, MalformedError, LimitExceededError, ValidationError,
        SchemaError, PolicyError, AccessDeniedError, RateLimitedError, IntegrityError,
        UnsupportedVersionError, KeyNotFoundError, WrongMasterKeyError, ShreddedError,
        RetentionError, LegalHoldError, ApprovalError, NotFoundError, StoreError, StoreBusyError,
        ReadOnlyError, AuditError, AuditTamperedError, IoError, ClosedError, UnsupportedError,
        StoreUnavailableError,
    )
}


def class_for_code(code: int) -> Type[CofferError]:
    """The exception class for a numeric code (:class:`CofferError` for an unknown one)."""
    return _BY_CODE.get(code, CofferError)
