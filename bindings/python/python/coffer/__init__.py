"""Coffer: field-level protection for customer records in accounting and ERP systems.

Read, normalise and validate customer records against a schema, mask values for display, and
keep records in a store: :class:`Coffer` seals them field by field, reveals them under the access
policy, searches them through blind indexes and keeps a verifiable audit trail. Records are
``dict`` objects (or JSON text) in the format described in the project's ``docs/RECORDS.md``.

>>> import coffer
>>> coffer.mask("13800000000", "phone")
'138****0000'
"""

from __future__ import annotations

import datetime
from typing import Any, Dict, List, Mapping, Optional, Union

from . import _native
from ._errors import (
    AccessDeniedError, ApprovalError, AuditError, AuditTamperedError, ClosedError, CofferError,
    IntegrityError, InternalError, InvalidArgumentError, IoError, KeyNotFoundError,
    LegalHoldError, LimitExceededError, MalformedError, NotFoundError, PolicyError,
    RateLimitedError, ReadOnlyError, RetentionError, SchemaError, ShreddedError, StoreBusyError, StoreUnavailableError,
    StoreError, UnsupportedError, UnsupportedVersionError, ValidationError, WrongMasterKeyError,
    class_for_code,
)
from ._vault import (
    Audit, Coffer, FieldView, IndexToken, SearchAnswer, SealedRecord, View, generate_master_key,
    open_with_keys,
    verify_certificate, ArchiveCheck, verify_archive, Report, render_report, restore, Redaction,
)

__all__ = [
    "__version__", "Schema", "Record", "validate", "normalize", "check", "mask", "error_kinds",
    "Coffer", "Audit", "SealedRecord", "View", "FieldView", "IndexToken", "SearchAnswer",
    "generate_master_key",
    "open_with_keys", "verify_certificate", "ArchiveCheck", "verify_archive", "Report",
    "render_report", "restore", "Redaction",
    "CofferError", "InternalError", "InvalidArgumentError", "MalformedError", "LimitExceededError",
    "ValidationError", "SchemaError", "PolicyError", "AccessDeniedError", "RateLimitedError",
    "IntegrityError", "UnsupportedVersionError", "KeyNotFoundError", "WrongMasterKeyError",
    "ShreddedError", "RetentionError", "LegalHoldError", "ApprovalError", "NotFoundError",
    "StoreError", "StoreBusyError", "StoreUnavailableError", "ReadOnlyError", "AuditError", "AuditTamperedError",
    "IoError", "ClosedError", "UnsupportedError", "class_for_code",
]

__version__: str = _native.__version__

#: A loaded, checked schema; ``Schema.builtin()`` or ``Schema.from_toml(text)``.
Schema = _native.Schema

#: A customer record: a mapping in Coffer's record format, or its JSON as ``str`` or ``bytes``.
Record = Union[Mapping[str, Any], str, bytes]


def _iso(today: Optional[datetime.date]) -> Optional[str]:
    if today is None:
        return None
    if not isinstance(today, datetime.date):
        raise InvalidArgumentError("today must be a datetime.date", InvalidArgumentError.code)
    return today.isoformat()


def validate(
    record: Record, *, today: Optional[datetime.date] = None, schema: Optional[_native.Schema] = None
) -> Dict[str, Any]:
    """Normalises and validates ``record``; returns the report.

    The report is ``{"valid": bool, "issues": [{"path", "code", "severity", "message"}]}``: every
    problem at once, each with its field path and a stable code, never the value. Birth dates are
    checked against ``today`` (default: today's UTC date). Raises :class:`MalformedError` when the
    record cannot be read at all.
    """
    return _native.validate(record, _iso(today), schema)


def normalize(record: Record) -> Dict[str, Any]:
    """Returns ``record`` in canonical form (full-width folded, separators and phone prefixes
    removed, ``x`` to ``X``, 15-digit resident IDs upgraded to 18). Idempotent."""
    return _native.normalize(record)


def check(
    record: Record, *, today: Optional[datetime.date] = None, schema: Optional[_native.Schema] = None
) -> Dict[str, Any]:
    """Normalises and validates ``record``; returns the normalised record, or raises
    :class:`ValidationError` whose ``report`` lists every problem."""
    return _native.check(record, _iso(today), schema)


def mask(value: str, rule: str, profile: str = "standard") -> Optional[str]:
    """The display form of ``value`` under a mask ``rule`` (``name``, ``phone``, ``id_number``,
    ``card``, ``account``, ``iban``, ``email``, ``address``, ``date``, ``last4``, ``initial``,
    ``withhold``, ``clear``) and ``profile`` (``standard`` or ``privileged``); ``None`` when the
    rule withholds the value."""
    return _native.mask(value, rule, profile)


def error_kinds() -> List[Dict[str, Any]]:
    """Every error kind: ``{"code", "name", "description", "exception"}``."""
    return [
        {"code": code, "name": name, "description": description, "exception": class_for_code(code)}
        for code, name, description in _native.error_kinds()
    ]
