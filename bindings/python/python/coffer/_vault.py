"""The store: seal customer records into envelopes, reveal them under the access policy, search
them through blind indexes, and verify the audit trail.

Everything here is a thin layer over the native extension, which takes and gives the same JSON
forms as the C library (see the project's ``docs/C-API.md``).
"""

from __future__ import annotations

import datetime
import json
import os
from types import TracebackType
from typing import (
    Any, Callable, Dict, ItemsView, Iterable, Iterator, KeysView, List, Mapping, NamedTuple, Optional,
    Sequence, Tuple, Type, Union, ValuesView,
)

from . import _native
from ._errors import (
    CofferError, IntegrityError, InvalidArgumentError, MalformedError,
)

#: A customer record: a mapping in Coffer's record format, or its JSON as ``str`` or ``bytes``.
RecordLike = Union[Mapping[str, Any], str, bytes]


def _record_arg(record: Any) -> Any:
    """A record as the native module takes it: a ``dict`` as it is (the module reads it in one
    pass, holding the GIL, and refuses one that changes while it is read), any other mapping
    copied into one, text as it is."""
    if type(record) is dict:
        return record
    return dict(record) if isinstance(record, Mapping) else record


def _natives(sealed: Iterable["SealedRecord"]) -> List[_native.Envelope]:
    out = []
    for s in sealed:
        if not isinstance(s, SealedRecord):
            raise TypeError(f"every item must be a SealedRecord, not {type(s).__name__}")
        out.append(s._envelope())
    return out


def _envelope_array(sealed: Iterable["SealedRecord"]) -> str:
    envelopes = []
    for s in sealed:
        if not isinstance(s, SealedRecord):
            raise TypeError(f"every item must be a SealedRecord, not {type(s).__name__}")
        envelopes.append(s.to_json())
    return "[" + ",".join(envelopes) + "]"


def _instant(value: datetime.datetime, name: str) -> str:
    if not isinstance(value, datetime.datetime):
        raise TypeError(f"{name} must be a datetime, not {type(value).__name__}")
    if value.tzinfo is None:
        raise InvalidArgumentError(f"{name} must be timezone-aware")
    return value.isoformat()


def _day(value: datetime.date, name: str) -> str:
    if isinstance(value, datetime.datetime) or not isinstance(value, datetime.date):
        raise TypeError(f"{name} must be a datetime.date, not {type(value).__name__}")
    return value.isoformat()


def verify_certificate(certificate: str, public_key: bytes) -> None:
    """Checks a destruction certificate (JSON) against a store's Ed25519 public key; raises
    :class:`IntegrityError` when it was altered or signed by another key."""
    _native.certificate_verify(certificate, bytes(public_key))


class ArchiveCheck(NamedTuple):
    """What :func:`verify_archive` found."""

    envelopes: int
    keys: int
    contents_checked: bool
    shredded: int


def verify_archive(
    bundle: str, public_key: bytes, archive_key: Optional[bytes] = None
) -> ArchiveCheck:
    """Verifies an archive bundle offline against the exporting store's public key, and every
    envelope and key inside too when ``archive_key`` is given. Raises :class:`IntegrityError`
    when anything was altered."""
    return ArchiveCheck(*_native.archive_verify(
        bundle, bytes(public_key), None if archive_key is None else bytes(archive_key)
    ))


def restore(
    backup: Union[str, "os.PathLike[str]"],
    target: Union[str, "os.PathLike[str]"],
    *,
    master_key: bytes,
    actor: str,
    certificates: Iterable[Union[str, Mapping[str, Any]]] = (),
    no_later_destructions: bool = False,
) -> Dict[str, Any]:
    """Restores the backup at ``backup`` as the store at ``target`` (close every handle on it
    first), never bringing a destroyed key back: every key destroyed after the backup is
    destroyed again, from the store at ``target`` when it can still be read and from the
    signed destruction ``certificates`` (JSON text or mappings) kept since. With neither, it
    raises :class:`InvalidArgumentError` unless ``no_later_destructions`` is true. A backup
    that does not match its manifest raises :class:`IntegrityError`. Returns the report; the
    replaced store is kept beside it (``report["replaced"]``)."""
    if not isinstance(master_key, (bytes, bytearray, memoryview)):
        raise TypeError(f"master_key must be bytes, not {type(master_key).__name__}")
    if isinstance(certificates, (str, bytes)):
        raise TypeError("certificates must be a list of certificates, not one text")
    certs: List[Any] = []
    for i, c in enumerate(certificates):
        if isinstance(c, str):
            try:
                certs.append(json.loads(c))
            except ValueError as e:
                raise MalformedError(
                    f"malformed JSON in certificate {i}: {getattr(e, 'msg', e)}", MalformedError.code
                ) from None
        else:
            certs.append(dict(c))
    options = _dumps(
        {"actor": actor, "certificates": certs, "no_later_destructions": bool(no_later_destructions)},
        "restore options",
    )
    result: Dict[str, Any] = json.loads(
        _native.restore(os.fspath(backup), os.fspath(target), bytes(master_key), options)
    )
    return result


def generate_master_key() -> bytes:
    """A new random 32-byte master key. Keep it outside the store (a KMS, a key file)."""
    return _native.generate_master_key()


def _dumps(value: Any, what: str, **kwargs: Any) -> str:
    """JSON text of a host-given value; a structure nested too deep (or circular) is a
    :class:`MalformedError` that names what it was, never a ``RecursionError``."""
    try:
        return json.dumps(value, **kwargs)
    except RecursionError:
        raise MalformedError(f"{what}: nested too deeply to send to Coffer") from None
    except ValueError as e:
        if "circular" in str(e).lower():
            raise MalformedError(f"{what}: a circular reference") from None
        raise


def open_with_keys(envelope: str, keys: Mapping[str, Any]) -> Dict[str, str]:
    """Opens an envelope (JSON) with explicit keys, outside any store, deciding and auditing
    nothing: ``keys`` is ``{"envelope_mac_key": hex, "data_keys": [{"category", "version",
    "key": hex}]}`` (a case of ``tests/vectors/envelopes.json``). Returns each field's value by
    path and, for a version 2 or 3 envelope, each sealed masked form as ``masked:<path>``. For
    conformance tests and offline recovery by someone who already holds the keys; applications
    call :meth:`Coffer.reveal`."""
    result: Dict[str, str] = json.loads(_native.open_with_keys(envelope, _dumps(keys, "keys")))
    return result


class SealedRecord:
    """A sealed record (an envelope): what the host stores instead of the record.

    Holds no plaintext of the encrypted fields; ``index`` gives the blind-index tokens for the
    host's indexed columns. Envelopes of version 2 and later (``version``) keep their masked
    display forms sealed with the fields; ``shredded`` lists the fields a redaction removed.
    """

    # The JSON text, the parsed JSON for the properties, and the envelope held natively for
    # sealing and revealing: each made from another on first need, so that a batch sealed and
    # revealed in Python never writes or reads JSON (issue 18).
    __slots__ = ("_text", "_parsed", "_native")

    def __init__(self, envelope_json: str) -> None:
        self._text: Optional[str] = envelope_json
        self._parsed: Optional[Dict[str, Any]] = None
        self._native: Optional[_native.Envelope] = None
        self._fields()  # checks the shape now; the MAC is checked when revealed

    @classmethod
    def _of(
        cls, text: Optional[str] = None, native: Optional[_native.Envelope] = None
    ) -> "SealedRecord":
        # Made by the store, from its JSON or natively: trusted to be an envelope, read lazily
        # on the first property access (the MAC is checked when revealed).
        s = cls.__new__(cls)
        s._text = text
        s._parsed = None
        s._native = native
        return s

    @property
    def _json(self) -> str:
        if self._text is None:
            assert self._native is not None
            self._text = self._native.to_json()
        return self._text

    def __reduce__(self) -> Tuple[Any, Tuple[str]]:
        # Pickled (and copied) as its JSON, what the host stores: the native envelope is a
        # cache of it, made again on the other side when it is needed.
        return (SealedRecord._of, (self._json,))

    def _envelope(self) -> _native.Envelope:
        """The envelope held natively, read from its JSON the first time."""
        if self._native is None:
            self._native = _native.Envelope.from_json(self._json)
        return self._native

    def _fields(self) -> Dict[str, Any]:
        if self._parsed is None:
            try:
                parsed = json.loads(self._json)
            except ValueError:
                raise IntegrityError("envelope: not a well-formed envelope") from None
            if not isinstance(parsed, dict):
                raise IntegrityError("envelope: not a well-formed envelope")
            self._parsed = parsed
        return self._parsed

    @classmethod
    def from_json(cls, text: Union[str, bytes]) -> "SealedRecord":
        """Reads an envelope stored earlier; it is verified when it is revealed."""
        return cls(text.decode("utf-8") if isinstance(text, bytes) else text)

    def to_json(self) -> str:
        """The envelope as JSON, to store in the host's database."""
        return self._json

    @property
    def tenant(self) -> str:
        """The tenant the record belongs to."""
        return str(self._fields().get("tenant", ""))

    @property
    def record_id(self) -> str:
        """The record's id."""
        return str(self._fields().get("record", ""))

    @property
    def subject(self) -> str:
        """The data subject (the customer) the record is about."""
        return str(self._fields().get("subject", ""))

    @property
    def index(self) -> Dict[str, Dict[str, str]]:
        """Blind-index tokens: field path to ``{epoch: token}``."""
        return dict(self._fields().get("index", {}))

    @property
    def masked(self) -> Dict[str, str]:
        """Display forms in clear, field path to masked value: only version 1 envelopes have
        them (versions 2 and 3 seal them; a reveal whose decision is to mask shows them)."""
        return {p: m for p, m in self._fields().get("masked", {}).items() if isinstance(m, str)}

    @property
    def version(self) -> int:
        """The envelope format version (1, 2 or 3)."""
        return int(self._fields().get("coffer", 0))

    @property
    def shredded(self) -> Dict[str, str]:
        """Fields a redaction removed (their key was destroyed): path to retention category."""
        return dict(self._fields().get("shredded", {}))

    def __repr__(self) -> str:
        return f"SealedRecord(tenant={self.tenant!r}, record_id={self.record_id!r})"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, SealedRecord) and other._json == self._json

    def __hash__(self) -> int:
        return hash(self._json)


class Redaction(NamedTuple):
    """What :meth:`Coffer.redact` did to one envelope: store ``sealed`` in place of the old
    one, and clear the host's index columns for the paths in ``clear_index``."""

    sealed: SealedRecord
    changed: bool
    shredded_categories: List[str]
    clear_index: List[str]


class FieldView(NamedTuple):
    """One field of a :class:`View`: ``state`` is ``revealed``, ``masked``, ``denied`` or
    ``shredded``; ``value`` is set for the first two, ``reason`` for the last two."""

    state: str
    value: Optional[str] = None
    reason: Optional[str] = None

    def __repr__(self) -> str:
        shown = "<redacted>" if self.value is not None else None
        return f"FieldView(state={self.state!r}, value={shown}, reason={self.reason!r})"


class _Keys(KeysView[str]):
    """A view's paths, iterated natively (``Mapping``'s view iterates through a generator)."""

    __slots__ = ()
    _mapping: "View"

    def __iter__(self) -> Iterator[str]:
        return iter(self._mapping)


class _Items(ItemsView[str, FieldView]):
    """A view's ``(path, FieldView)`` pairs, made natively."""

    __slots__ = ()
    _mapping: "View"

    def __iter__(self) -> Iterator[Tuple[str, FieldView]]:
        return self._mapping._items()


class _Values(ValuesView[FieldView]):
    """A view's ``FieldView``s, made natively."""

    __slots__ = ()
    _mapping: "View"

    def __iter__(self) -> Iterator[FieldView]:
        return self._mapping._values()


class View(_native.ViewBase, Mapping[str, FieldView]):
    """What a reveal returns: a read-only mapping from field path to :class:`FieldView`, with
    the ``record`` id, the ``policy_version`` that decided and the ``audit_seq`` of the audit
    entry that recorded it (for a batch, the batch's one entry, which lists this record).
    ``repr`` never shows values. ``View(parsed)`` reads a view's JSON form (as the C library
    writes it), parsed.

    A view made by the store keeps its fields in the native module, in memory wiped when the
    view is dropped, and makes a field's :class:`FieldView` (and its value's ``str``) each time
    it is asked for; :meth:`value` makes the value alone. Values nobody reads never become
    Python strings, which cannot be wiped. Its mapping methods run natively (issue 18)."""

    __slots__ = ()

    def __new__(cls, parsed: Mapping[str, Any]) -> "View":
        fields = {
            path: FieldView(f.get("state", "denied"), f.get("value"), f.get("reason"))
            for path, f in parsed.get("fields", {}).items()
        }
        return super().__new__(
            cls,
            str(parsed.get("record", "")),
            str(parsed.get("policy_version", "")),
            int(parsed.get("audit_seq", 0)),
            fields,
        )

    @classmethod
    def _of(
        cls,
        record: str,
        policy_version: str,
        audit_seq: int,
        fields: Optional[Dict[str, FieldView]],
        native: Optional[_native.ViewFields] = None,
    ) -> "View":
        """A view from its parts, its fields made (how views pickle; also the form pickles of
        earlier versions name) or held natively."""
        # (The native part copies a dict it is given.)
        made: Union[Dict[str, FieldView], _native.ViewFields] = (
            native if native is not None else fields if fields is not None else {})
        return _native.ViewBase.__new__(cls, record, policy_version, audit_seq, made)

    def keys(self) -> KeysView[str]:
        return _Keys(self)

    def items(self) -> ItemsView[str, FieldView]:
        return _Items(self)

    def values(self) -> ValuesView[FieldView]:
        return _Values(self)

    def __reduce__(self) -> Tuple[Any, Tuple[Any, ...]]:
        # Pickled (and copied) with its fields made: the native part does not cross.
        return (View._of, (self.record, self.policy_version, self.audit_seq, dict(self)))

    def __repr__(self) -> str:
        states = ", ".join(f"{p!r}: {f.state!r}" for p, f in self.items())
        return f"View(record={self.record!r}, audit_seq={self.audit_seq}, fields={{{states}}})"


class IndexToken(NamedTuple):
    """A blind-index token to look up in the host's column for ``epoch``."""

    epoch: int
    token: str


class SearchAnswer(NamedTuple):
    """What a search found out: per value, the tokens to look up (one per index epoch in use),
    and the subjects whose rows to leave out (restricted after an erasure request)."""

    field: str
    audit_seq: int
    tokens: List[List[IndexToken]]
    withheld_subjects: List[str]


def _access(
    tenant: str,
    principal: str,
    roles: Sequence[str],
    purpose: str,
    context: Optional[Mapping[str, Any]],
    attributes: Optional[Mapping[str, Any]],
    record: Optional[Mapping[str, Any]],
) -> str:
    if isinstance(roles, str):
        raise TypeError("roles must be a sequence of str, not a str")
    for name, value in (("tenant", tenant), ("principal", principal), ("purpose", purpose)):
        if not isinstance(value, str):
            raise TypeError(f"{name} must be a str, not {type(value).__name__}")
    request: Dict[str, Any] = {
        "principal": {"id": principal, "tenant": tenant, "roles": list(roles)},
        "purpose": purpose,
    }
    if attributes:
        request["principal"]["attributes"] = dict(attributes)
    if context:
        request["context"] = dict(context)
    if record:
        request["record"] = dict(record)
    return _dumps(request, "access", ensure_ascii=False, default=_json_default)


def _json_default(value: Any) -> Any:
    if isinstance(value, datetime.datetime):
        if value.tzinfo is None:
            raise InvalidArgumentError("datetimes must be timezone-aware")
        return value.isoformat()
    if isinstance(value, (set, frozenset)):
        return sorted(value)
    raise TypeError(f"cannot send a {type(value).__name__} to Coffer")


class Report(Mapping[str, Any]):
    """A compliance report (see the project's ``docs/REPORTS.md``): a mapping over its JSON
    (``report["subjects"]``, ``report["findings"]``…) with its renderings. ``kind`` is
    ``subject``, ``incident``, ``access_review`` or ``check``. A subject report may hold the
    values the policy revealed: ``repr`` never shows them."""

    __slots__ = ("_text", "_data")

    def __init__(self, text: str) -> None:
        self._text = text
        self._data: Dict[str, Any] = json.loads(text)

    @property
    def kind(self) -> str:
        """``subject``, ``incident``, ``access_review`` or ``check``."""
        return str(self._data.get("report", ""))

    @property
    def trail_intact(self) -> bool:
        """Whether the audit trail the report was built from verified."""
        return bool(self._data.get("trail", {}).get("intact", False))

    def __getitem__(self, key: str) -> Any:
        return self._data[key]

    def __iter__(self) -> Iterator[str]:
        return iter(self._data)

    def __len__(self) -> int:
        return len(self._data)

    def to_json(self) -> str:
        """The report's JSON, as the C library and the ``coffer`` command give it."""
        return self._text

    def to_markdown(self) -> str:
        """A readable Markdown rendering, for review before it is handed out."""
        return _native.render_report(self._text, "markdown")

    def to_html(self) -> str:
        """A self-contained HTML page with SVG charts (no script, nothing fetched)."""
        return _native.render_report(self._text, "html")

    def __repr__(self) -> str:
        return f"Report(kind={self.kind!r}, generated={self._data.get('generated')!r})"


def render_report(report: Union[str, Mapping[str, Any]], format: str = "html") -> str:
    """Renders a report (its JSON, or a :class:`Report`) as ``json``, ``markdown`` or
    ``html``; a report from the C library or the ``coffer`` command renders the same."""
    if isinstance(report, Report):
        text = report.to_json()
    elif isinstance(report, str):
        text = report
    elif isinstance(report, Mapping):
        text = _dumps(dict(report), "report", ensure_ascii=False)
    else:
        raise TypeError(f"report must be a Report, its JSON or a mapping, not {type(report).__name__}")
    if not isinstance(format, str):
        raise TypeError("format must be a str")
    return _native.render_report(text, format)


def _report_options(
    request: Dict[str, Any], accept_broken_trail: bool, checkpoint: Optional[str]
) -> None:
    if not isinstance(accept_broken_trail, bool):
        raise TypeError("accept_broken_trail must be a bool")
    if accept_broken_trail:
        request["accept_broken_trail"] = True
    if checkpoint is not None:
        if not isinstance(checkpoint, str):
            raise TypeError("checkpoint must be the checkpoint's JSON (str)")
        request["checkpoint"] = json.loads(checkpoint)


def _when(value: Union[datetime.date, datetime.datetime, None], name: str) -> Optional[str]:
    if value is None:
        return None
    if isinstance(value, datetime.datetime):
        return _instant(value, name)
    return _day(value, name)


class Audit:
    """The store's tamper-evident audit trail."""

    __slots__ = ("_vault",)

    def __init__(self, vault: "_native.Vault") -> None:
        self._vault = vault

    def verify(self, checkpoint: Optional[str] = None) -> Dict[str, Any]:
        """Verifies the chain, and that it still reaches ``checkpoint`` (from
        :meth:`checkpoint`) when given: ``{"entries", "last_seq", "intact", "first_problem",
        "checkpoint_checked"}``."""
        report: Dict[str, Any] = json.loads(self._vault.audit_verify(checkpoint))
        return report

    def checkpoint(self, *, actor: str) -> str:
        """A signed checkpoint of the chain (JSON), to keep where the database's attacker
        cannot rewrite it."""
        return self._vault.audit_checkpoint(actor)

    def export(self, *, expanded: bool = False) -> List[Dict[str, Any]]:
        """Every entry, oldest first, as stored: each with its ``seq`` and chain ``mac``, a
        batch of seals, reveals or key creations as one entry (``seal.batch`` …) whose
        ``detail.batch`` lists its records. With ``expanded=True``, one entry per event
        instead: a batch's records each on their own, with the batch's ``seq`` and their place
        in it (``item``, from 0), and no ``mac`` (the chain's MAC is over the stored entry).
        Keep the stored form as evidence; read or forward the expanded one."""
        text = self._vault.audit_export_expanded() if expanded else self._vault.audit_export()
        return [json.loads(line) for line in text.splitlines() if line]

    def subscribe(self, callback: Callable[[Dict[str, Any]], None]) -> None:
        """Calls ``callback(entry)`` for every audit entry committed from now on (e.g. to
        forward it to a SIEM), on the thread that committed it, after the commit. An exception
        in the callback goes to ``sys.unraisablehook``; it never undoes the commit."""
        if not callable(callback):
            raise TypeError("callback must be callable")

        def forward(text: str) -> None:
            callback(json.loads(text))

        self._vault.audit_subscribe(forward)


class Coffer:
    """An open Coffer store: the key store and audit trail in one SQLite file, with its schema,
    access policy and retention rules. Thread-safe; calls release the GIL. Use it as a context
    manager, or call :meth:`close`.

    >>> import coffer, tempfile, os
    >>> key = coffer.generate_master_key()
    >>> with coffer.Coffer.open(os.path.join(tempfile.mkdtemp(), "c.db"), master_key=key) as c:
    ...     c.audit.verify()["intact"]
    True
    """

    __slots__ = ("_vault", "audit")

    def __init__(self, vault: "_native.Vault") -> None:
        self._vault = vault
        #: The audit trail.
        self.audit = Audit(vault)

    @classmethod
    def open(
        cls,
        path: Union[str, "os.PathLike[str]"],
        *,
        master_key: bytes,
        schema: Optional[str] = None,
        policy: Optional[str] = None,
        retention: Optional[str] = None,
        create: bool = True,
        clock: Optional[datetime.datetime] = None,
        data_key_cache: Optional[int] = None,
        busy_timeout_ms: Optional[int] = None,
    ) -> "Coffer":
        """Opens (or, with ``create``, creates) the store at ``path``.

        ``master_key`` is 32 bytes (see :func:`generate_master_key`); Coffer never stores it.
        ``schema``, ``policy`` and ``retention`` are TOML texts (the built-in schema, no policy
        (every reveal denied) and no retention rules when omitted). A wrong key raises
        :class:`WrongMasterKeyError` before anything is written. ``clock`` (a timezone-aware
        ``datetime``) fixes the store's clock, for tests and back-dated runs; move it with
        :meth:`set_clock`. ``data_key_cache`` is how many unwrapped data keys to keep in memory
        (default 10,000; a bulk job over more customers than that reads each key back from the
        store); ``busy_timeout_ms`` how long to wait for another process's lock (default 5,000).
        """
        if not isinstance(master_key, (bytes, bytearray, memoryview)):
            raise TypeError(f"master_key must be bytes, not {type(master_key).__name__}")
        options: Dict[str, Any] = {"create": bool(create)}
        for name, text in (("schema", schema), ("policy", policy), ("retention", retention)):
            if text is not None:
                if not isinstance(text, str):
                    raise TypeError(f"{name} must be TOML text (str), not {type(text).__name__}")
                options[name] = text
        for name, number in (("data_key_cache", data_key_cache), ("busy_timeout_ms", busy_timeout_ms)):
            if number is not None:
                if isinstance(number, bool) or not isinstance(number, int):
                    raise TypeError(f"{name} must be an int, not {type(number).__name__}")
                options[name] = number
        vault = _native.Vault.open(
            os.fspath(path), bytes(master_key), json.dumps(options),
            None if clock is None else _instant(clock, "clock"),
        )
        return cls(vault)

    def set_clock(self, at: datetime.datetime) -> None:
        """Moves the fixed clock of a store opened with ``clock=``."""
        self._vault.set_clock(_instant(at, "at"))

    def close(self) -> None:
        """Closes the store and wipes its keys. Calls afterwards raise :class:`ClosedError`."""
        self._vault.close()

    @property
    def closed(self) -> bool:
        """Whether :meth:`close` was called."""
        return self._vault.closed

    def __enter__(self) -> "Coffer":
        return self

    def __exit__(
        self,
        exc_type: Optional[Type[BaseException]],
        exc: Optional[BaseException],
        tb: Optional[TracebackType],
    ) -> None:
        self.close()

    def __repr__(self) -> str:
        return "<coffer.Coffer (closed)>" if self.closed else "<coffer.Coffer>"

    def seal(self, record: RecordLike, *, actor: str) -> SealedRecord:
        """Normalises, validates and seals ``record``. Raises :class:`ValidationError` (with
        the report) when it is invalid. ``actor`` goes into the audit trail."""
        if not isinstance(record, (Mapping, str, bytes)):
            raise TypeError(
                f"record must be a mapping, a JSON str or UTF-8 bytes, not {type(record).__name__}"
            )
        return SealedRecord._of(
            native=self._vault.seal(_record_arg(record), actor)
        )

    def seal_many(
        self, records: Iterable[RecordLike], *, actor: str
    ) -> List[Union[SealedRecord, CofferError]]:
        """Seals many records with one audit transaction; one result per record, in order: the
        :class:`SealedRecord`, or the exception (not raised) for a record that failed."""
        items = [_record_arg(r) for r in records]
        return [
            SealedRecord._of(native=r) if isinstance(r, _native.Envelope) else r
            for r in self._vault.seal_many(items, actor)
        ]

    def reveal(
        self,
        sealed: SealedRecord,
        *,
        tenant: str,
        principal: str,
        roles: Sequence[str],
        purpose: str,
        context: Optional[Mapping[str, Any]] = None,
        attributes: Optional[Mapping[str, Any]] = None,
        record: Optional[Mapping[str, Any]] = None,
    ) -> View:
        """Reveals ``sealed`` to ``principal`` (of ``tenant``, with ``roles``) for ``purpose``:
        each field revealed, masked or denied by the policy, recorded in the audit trail before
        anything is decrypted. ``tenant`` is the principal's own tenant: Coffer never takes it
        from the record, which would defeat tenant isolation."""
        if not isinstance(sealed, SealedRecord):
            raise TypeError(f"sealed must be a SealedRecord, not {type(sealed).__name__}")
        access = _access(tenant, principal, roles, purpose, context, attributes, record)
        return self._vault.reveal(sealed._envelope(), access)

    def reveal_many(
        self,
        sealed: Iterable[SealedRecord],
        *,
        tenant: str,
        principal: str,
        roles: Sequence[str],
        purpose: str,
        context: Optional[Mapping[str, Any]] = None,
        attributes: Optional[Mapping[str, Any]] = None,
    ) -> List[View]:
        """Reveals many envelopes to one request with one audit transaction."""
        envelopes = _natives(sealed)
        access = _access(tenant, principal, roles, purpose, context, attributes, None)
        return self._vault.reveal_many(envelopes, access)

    def redact(self, sealed: Iterable[SealedRecord], *, actor: str) -> List[Redaction]:
        """For every retention category whose data key was destroyed, removes its
        ciphertexts, masked forms and blind-index tokens from the envelopes (the removed fields
        then read ``shredded``), and rewrites version 1 envelopes as version 2. Returns one
        :class:`Redaction` per envelope, in order. A key the store does not have at all raises
        :class:`KeyNotFoundError`, nothing redacted."""
        done = json.loads(self._vault.redact(_envelope_array(sealed), actor))
        return [
            Redaction(
                SealedRecord._of(
                    json.dumps(r["envelope"], ensure_ascii=False, separators=(",", ":"))
                ),
                bool(r["changed"]),
                list(r["shredded_categories"]),
                list(r["clear_index"]),
            )
            for r in done
        ]

    # ---- compliance reports ----

    def _report(
        self,
        request: Dict[str, Any],
        access: str,
        accept_broken_trail: bool,
        checkpoint: Optional[str],
    ) -> Report:
        request["access"] = json.loads(access)
        _report_options(request, accept_broken_trail, checkpoint)
        return Report(self._vault.report(_dumps(request, "report request", ensure_ascii=False)))

    def subject_report(
        self,
        subject: str,
        *,
        tenant: str,
        principal: str,
        roles: Sequence[str],
        purpose: str,
        sealed: Iterable[SealedRecord] = (),
        context: Optional[Mapping[str, Any]] = None,
        accept_broken_trail: bool = False,
        checkpoint: Optional[str] = None,
    ) -> Report:
        """What is held about ``subject`` of ``tenant`` (the principal's own tenant) and who has
        seen it (PIPL art. 45, GDPR art. 15):
        every field path with its category, retention rule and keep-until date, holds,
        restrictions, lifecycle events and the access history. With ``sealed`` (the subject's
        records), values appear as the policy shows them to ``principal``, through an audited
        reveal. The policy must grant ``principal`` action ``admin``; a subject nobody knows
        gets an empty report. Raises :class:`IntegrityError` on a broken audit trail unless
        ``accept_broken_trail``."""
        if not isinstance(subject, str):
            raise TypeError(f"subject must be a str, not {type(subject).__name__}")
        access = _access(tenant, principal, roles, purpose, context, None, None)
        request: Dict[str, Any] = {
            "report": "subject",
            "tenant": tenant,
            "subject": subject,
            "envelopes": json.loads(_envelope_array(sealed)),
        }
        return self._report(request, access, accept_broken_trail, checkpoint)

    def affected(
        self,
        *,
        tenant: str,
        principal: str,
        roles: Sequence[str],
        purpose: str,
        by: Optional[str] = None,
        client: Optional[str] = None,
        start: Union[datetime.date, datetime.datetime, None] = None,
        end: Union[datetime.date, datetime.datetime, None] = None,
        fields: Sequence[str] = (),
        context: Optional[Mapping[str, Any]] = None,
        accept_broken_trail: bool = False,
        checkpoint: Optional[str] = None,
    ) -> Report:
        """Incident scoping (PIPL art. 57): every subject of ``tenant`` whose ``fields``
        (patterns such as ``id_documents[].number``, globs, ``class:sensitive``; default every
        personal field) were revealed in clear by ``by`` or through ``client`` in ``[start,
        end)``, with counts. The trail is verified first: a broken one raises
        :class:`IntegrityError` unless ``accept_broken_trail``."""
        if isinstance(fields, str):
            raise TypeError("fields must be a sequence of str, not a str")
        access = _access(tenant, principal, roles, purpose, context, None, None)
        query: Dict[str, Any] = {"tenant": tenant, "fields": list(fields)}
        for key, value in (("principal", by), ("client", client)):
            if value is not None:
                if not isinstance(value, str):
                    raise TypeError(f"{key} must be a str")
                query[key] = value
        for key, when in (("from", _when(start, "start")), ("until", _when(end, "end"))):
            if when is not None:
                query[key] = when
        return self._report(
            {"report": "incident", "query": query}, access, accept_broken_trail, checkpoint
        )

    def access_review(
        self,
        since: Union[datetime.date, datetime.datetime],
        *,
        tenant: str,
        principal: str,
        roles: Sequence[str],
        purpose: str,
        context: Optional[Mapping[str, Any]] = None,
        accept_broken_trail: bool = False,
        checkpoint: Optional[str] = None,
    ) -> Report:
        """Per role of the policy, every grant on a personal field (field, purpose, rule,
        effect, requirements) and how often it was used since ``since``; ``report["unused"]``
        counts the grants nobody used, candidates for removal."""
        access = _access(tenant, principal, roles, purpose, context, None, None)
        return self._report(
            {"report": "access_review", "since": _when(since, "since")},
            access,
            accept_broken_trail,
            checkpoint,
        )

    def compliance_check(
        self,
        *,
        tenant: str,
        principal: str,
        roles: Sequence[str],
        purpose: str,
        max_key_age_days: int = 365,
        max_list_age_days: int = 30,
        checkpoint_interval_days: int = 7,
        max_backup_exposure_days: int = 30,
        context: Optional[Mapping[str, Any]] = None,
        checkpoint: Optional[str] = None,
    ) -> Report:
        """Findings, each with a stable ``code``, a ``severity`` and the ``objects``
        concerned: a broken trail, stale checkpoints, uncovered fields, overdue keys, lists
        awaiting approval, keys due for rotation, risky policy rules."""
        for name, value in (
            ("max_key_age_days", max_key_age_days),
            ("max_list_age_days", max_list_age_days),
            ("checkpoint_interval_days", checkpoint_interval_days),
            ("max_backup_exposure_days", max_backup_exposure_days),
        ):
            if isinstance(value, bool) or not isinstance(value, int):
                raise TypeError(f"{name} must be an int")
        access = _access(tenant, principal, roles, purpose, context, None, None)
        options = {
            "max_key_age_days": max_key_age_days,
            "max_list_age_days": max_list_age_days,
            "checkpoint_interval_days": checkpoint_interval_days,
            "max_backup_exposure_days": max_backup_exposure_days,
        }
        return self._report(
            {"report": "check", "options": options}, access, False, checkpoint
        )

    def search(
        self,
        field: str,
        value: str,
        *,
        tenant: str,
        principal: str,
        roles: Sequence[str],
        purpose: str,
        context: Optional[Mapping[str, Any]] = None,
        attributes: Optional[Mapping[str, Any]] = None,
    ) -> SearchAnswer:
        """Searches the blind index of ``field`` (``id_documents[].number``, ``phones[]``...)
        for ``value`` in the principal's own tenant. A search is an access like a reveal: the
        policy decides it (action ``search``; a denial raises ``AccessDeniedError``), every
        value counts against the rate limits (``RateLimitedError`` past one), and the audit
        trail records it. ``answer.tokens[0]`` holds one token per index epoch in use: look
        each up in its column, leave out rows of ``answer.withheld_subjects``, and confirm
        candidates by revealing them (short tokens have false positives by design)."""
        if not isinstance(value, str):
            raise TypeError(f"value must be a str, not {type(value).__name__}")
        return self.search_many(
            field,
            [value],
            tenant=tenant,
            principal=principal,
            roles=roles,
            purpose=purpose,
            context=context,
            attributes=attributes,
        )

    def search_many(
        self,
        field: str,
        values: Sequence[str],
        *,
        tenant: str,
        principal: str,
        roles: Sequence[str],
        purpose: str,
        context: Optional[Mapping[str, Any]] = None,
        attributes: Optional[Mapping[str, Any]] = None,
    ) -> SearchAnswer:
        """Searches for many values of one field with one decision and one audit entry;
        ``answer.tokens[i]`` belongs to ``values[i]``."""
        if isinstance(values, str) or not all(isinstance(v, str) for v in values):
            raise TypeError("values must be a sequence of str")
        if not isinstance(field, str):
            raise TypeError(f"field must be a str, not {type(field).__name__}")
        access = _access(tenant, principal, roles, purpose, context, attributes, None)
        request = _dumps({"field": field, "values": list(values)}, "search", ensure_ascii=False)
        answer = json.loads(self._vault.search(access, request))
        return SearchAnswer(
            answer["field"],
            answer["audit_seq"],
            [[IndexToken(t["epoch"], t["token"]) for t in ts] for ts in answer["tokens"]],
            list(answer["withheld_subjects"]),
        )

    # ---- retention ----

    def record_event(
        self, tenant: str, subject: str, event: str, date: datetime.date, *, actor: str
    ) -> None:
        """Records a lifecycle event of a subject (``relationship_ended``, ``account_closed``,
        ``transaction_ended``, ``matter_closed``, ``consent_withdrawn``, ``purpose_achieved``)
        on ``date`` (not in the future); retention periods run from it."""
        self._vault.record_event(tenant, subject, event, _day(date, "date"), actor)

    def place_hold(
        self,
        *,
        tenant: str,
        reason: str,
        actor: str,
        subject: Optional[str] = None,
        category: Optional[str] = None,
        until: Optional[datetime.date] = None,
        open_matter: bool = False,
    ) -> int:
        """Places a legal hold on a tenant, a subject or a category; nothing it covers is
        destroyed until it is released (or ``until`` passes, unless ``open_matter``). Returns
        its id."""
        hold: Dict[str, Any] = {"tenant": tenant, "reason": reason, "open_matter": bool(open_matter)}
        if subject is not None:
            hold["subject"] = subject
        if category is not None:
            hold["category"] = category
        if until is not None:
            hold["until"] = _day(until, "until")
        return self._vault.place_hold(_dumps(hold, "hold", ensure_ascii=False), actor)

    def release_hold(self, hold_id: int, *, actor: str) -> None:
        """Releases a hold."""
        self._vault.release_hold(hold_id, actor)

    def holds(self) -> List[Dict[str, Any]]:
        """The holds in force."""
        result: List[Dict[str, Any]] = json.loads(self._vault.holds())
        return result

    def erase(self, tenant: str, subject: str, *, actor: str) -> Dict[str, Any]:
        """An erasure request: destroys (by destroying keys) what no legal duty keeps, restricts
        the rest to its rules' purposes, and answers per category with the rule, legal basis,
        until-date and the signed certificate. Raises :class:`LegalHoldError` under a hold."""
        result: Dict[str, Any] = json.loads(self._vault.erase(tenant, subject, actor))
        return result

    def sweep(self, *, actor: str) -> Dict[str, Any]:
        """Destroys what ``destroy`` rules let go now and proposes a destruction list for what
        ``review`` rules let go: ``{"destroyed", "certificate", "proposed_list", "proposed",
        "held"}``."""
        result: Dict[str, Any] = json.loads(self._vault.sweep(actor))
        return result

    def approve(self, list_id: int, *, approver: str, role: str) -> None:
        """Approves a destruction list as ``approver`` in ``role``."""
        self._vault.approve(list_id, approver, role)

    def execute(self, list_id: int, *, actor: str) -> str:
        """Executes an approved destruction list; returns the signed certificate (JSON).
        Raises :class:`ApprovalError` without enough approvals."""
        return self._vault.execute(list_id, actor)

    # ---- archives ----

    def archive_export(
        self,
        sealed: Iterable[SealedRecord],
        *,
        archive_key: bytes,
        tenant: str,
        principal: str,
        roles: Sequence[str],
        purpose: str,
        context: Optional[Mapping[str, Any]] = None,
        attributes: Optional[Mapping[str, Any]] = None,
    ) -> str:
        """Exports sealed records with their keys re-wrapped under ``archive_key`` (32 bytes,
        kept apart from the bundle): a signed bundle (JSON) that another store can restore and
        anyone can verify offline with :func:`verify_archive`. The policy must allow the
        principal the ``export`` action on every field (else ``AccessDeniedError``, nothing
        exported); one audit entry per data subject records the export."""
        access = _access(tenant, principal, roles, purpose, context, attributes, None)
        return self._vault.archive_export(_envelope_array(sealed), bytes(archive_key), access)

    def archive_restore(
        self, bundle: str, *, archive_key: bytes, public_key: bytes, actor: str
    ) -> List[SealedRecord]:
        """Restores a bundle exported by the store whose ``public_key`` is given; returns the
        sealed records as this store now holds them (store them in place of the old ones)."""
        return [
            SealedRecord._of(e)
            for e in self._vault.archive_restore(bundle, bytes(archive_key), bytes(public_key), actor)
        ]

    # ---- keys ----

    def rotate_master_key(self, new_master_key: bytes, *, actor: str) -> None:
        """Rewraps the keyring under a new master key; the old one no longer opens the store."""
        if not isinstance(new_master_key, (bytes, bytearray, memoryview)):
            raise TypeError(f"new_master_key must be bytes, not {type(new_master_key).__name__}")
        self._vault.rotate_master_key(bytes(new_master_key), actor)

    def rotate_kek(self, *, actor: str, retire: bool = False) -> int:
        """Starts a KEK rotation and rewraps every data key; returns the new KEK version.

        With ``retire``, the older KEKs are then deleted for good (a rotation left unfinished
        is resumed rather than a new one started): no copy of the store taken from then on can
        open a data key destroyed before. See the project's docs/RETENTION.md."""
        versions = self._vault.kek_versions()
        if retire and len(versions) > 1:
            version = versions[-1]
        else:
            version = self._vault.rotate_kek(actor)
        while self._vault.continue_kek_rotation(actor) > 0:
            pass
        if retire:
            self._vault.retire_keks(actor)
        return version

    def retire_keks(self, *, actor: str) -> List[int]:
        """Deletes every KEK older than the current one, once every live data key is
        rewrapped (else :class:`InvalidArgumentError`, nothing deleted); returns the versions
        deleted."""
        return self._vault.retire_keks(actor)

    # ---- backups ----

    def backup(self, path: Union[str, "os.PathLike[str]"], *, actor: str) -> Dict[str, Any]:
        """Backs the store up to ``path`` (a new file, never overwritten, created readable by
        its owner only) while others go on writing, with a signed manifest beside it
        (``<path>.manifest.json``); returns the manifest."""
        result: Dict[str, Any] = json.loads(self._vault.backup(os.fspath(path), actor))
        return result

    def rotate_data_key(self, tenant: str, subject: str, category: str, *, actor: str) -> int:
        """A new data-key version for new seals of (tenant, subject, category)."""
        return self._vault.rotate_data_key(tenant, subject, category, actor)

    def rotate_index_key(self, *, actor: str) -> int:
        """Starts a new blind-index epoch; returns its number."""
        return self._vault.rotate_index_key(actor)

    def retire_index_epoch(self, epoch: int, *, actor: str) -> None:
        """Retires a blind-index epoch once the host has backfilled the new one."""
        self._vault.retire_index_epoch(epoch, actor)

    def signing_public_key(self) -> bytes:
        """The store's Ed25519 public key, to verify checkpoints and certificates offline."""
        return self._vault.signing_public_key()
