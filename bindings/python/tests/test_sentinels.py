"""No personal data outside ciphertext, from Python: sentinel values planted in every protected
field, every operation run on them (failing ones too), and every exception message, ``repr``,
returned document, export, certificate, bundle and the store's files searched for the sentinels
in UTF-8, UTF-16, hex and base64."""

from __future__ import annotations

import base64
import datetime
import json
import os
import pathlib
import subprocess
from typing import Any, Dict, List, Tuple

import pytest

import coffer

from conftest import POSTGRES, store_location, store_rows

ROOT = pathlib.Path(__file__).resolve().parents[3]
POLICY = (ROOT / "examples" / "policies" / "accounting-firm.toml").read_text(encoding="utf-8")
RETENTION = (ROOT / "examples" / "policies" / "retention.toml").read_text(encoding="utf-8")
C_SENTINELS = pathlib.Path(
    os.environ.get("COFFER_C_SENTINELS", ROOT / "tests" / "c" / "build" / "sentinels_shared")
)

# Valid values (the ID and card carry correct check characters), found nowhere else.
SENTINELS = [
    "哨兵蟒蛇丙丁",
    "110101196903034194",
    "13987650123",
    "sentinel.py9@example.net",
    "哨兵县蟒蛇镇九号巷",
    "6217009876543213",
    "SENTINELPYCUSTOM",
]


def record(rid: str, subject: str) -> Dict[str, Any]:
    name, id_number, phone, email, address, card, custom = SENTINELS
    return {
        "id": rid, "tenant": "acme", "subject": subject, "kind": "individual", "name": name,
        "id_documents": [{"type": "cn_resident_id", "number": id_number}],
        "phones": [phone], "emails": [email], "addresses": [address],
        "bank_accounts": [{"bank_name": "示例银行", "account_type": "card", "account_number": card}],
        "custom": {"note": custom},
    }


def needles() -> List[Tuple[str, bytes]]:
    out: List[Tuple[str, bytes]] = []
    for s in SENTINELS:
        b = s.encode("utf-8")
        out += [(f"{s} (UTF-8)", b), (f"{s} (UTF-16LE)", s.encode("utf-16-le")),
                (f"{s} (UTF-16BE)", s.encode("utf-16-be")), (f"{s} (hex)", b.hex().encode()),
                (f"{s} (HEX)", b.hex().upper().encode())]
        for encode in (base64.standard_b64encode, base64.urlsafe_b64encode):
            for shift in range(3):
                enc = encode(bytes(shift) + b).rstrip(b"=")
                start = -(-shift * 4 // 3) + (1 if shift else 0)
                end = len(enc) - 2
                if end > start + 8:
                    out.append((f"{s} (base64, shift {shift})", enc[start:end]))
    return out


def assert_clean(what: str, haystack: bytes) -> None:
    for name, needle in needles():
        assert needle not in haystack, f"{what} contains the planted value {name}"


def test_needles_find_planted_leaks() -> None:
    for leak in (
        f"..{SENTINELS[3]}..".encode(),
        SENTINELS[0].encode("utf-16-le"),
        SENTINELS[1].encode().hex().upper().encode(),
        base64.standard_b64encode(b"x" + SENTINELS[4].encode() + b"yz"),
        base64.urlsafe_b64encode(b"xy" + SENTINELS[5].encode()),
    ):
        with pytest.raises(AssertionError):
            assert_clean("a planted leak", leak)


def test_no_sentinel_outside_ciphertext(tmp_path: pathlib.Path) -> None:
    outputs: List[Tuple[str, str]] = []
    key = coffer.generate_master_key()
    past = datetime.datetime(1986, 1, 6, 9, 0, tzinfo=datetime.timezone.utc)
    db = store_location(tmp_path)
    with coffer.Coffer.open(db, master_key=key, policy=POLICY, retention=RETENTION,
                            clock=past) as c:
        # Seal good records and one whose ID check character is wrong.
        bad = record("c-bad", "s-bad")
        bad["id_documents"][0]["number"] = SENTINELS[1][:17] + "1"
        results = c.seal_many([record(f"c-{i}", f"s-{i}") for i in range(3)] + [bad], actor="import")
        sealed = [r for r in results if isinstance(r, coffer.SealedRecord)]
        errors = [r for r in results if isinstance(r, coffer.CofferError)]
        assert len(sealed) == 3 and len(errors) == 1
        outputs += [("seal error", f"{errors[0]} {errors[0]!r}")]
        outputs += [("sealed repr", repr(s)) for s in sealed]
        outputs += [("envelope JSON", s.to_json()) for s in sealed]
        outputs += [("index", repr(s.index)) for s in sealed]
        with pytest.raises(coffer.ValidationError) as failed:
            c.seal(bad, actor="import")
        outputs.append(("seal error", f"{failed.value} {failed.value!r} {failed.value.args!r}"))
        with pytest.raises(coffer.CofferError) as malformed:
            c.seal(dict(record("c-x", "s-x"), phonez=[SENTINELS[2]]), actor="import")
        outputs.append(("malformed error", f"{malformed.value} {malformed.value!r}"))
        # Search, and reveals that mask, deny, cross tenants and reveal.
        outputs.append(("tokens", repr(c.search("id_documents[].number", SENTINELS[1], tenant="acme", principal="accountant-1", roles=["accountant"], purpose="payments").tokens[0])))
        for roles, purpose, tenant, context in (
            (["clerk"], "bookkeeping", "acme", None),
            (["marketing"], "marketing", "acme", None),
            (["accountant"], "payments", "other", None),
            (["auditor"], "statutory_audit", "acme", {"ticket": "T-1"}),
        ):
            try:
                view = c.reveal(sealed[0], tenant=tenant, principal="p-1", roles=roles, purpose=purpose,
                                context=context)
                outputs.append(("view repr", repr(view) + repr(list(view.values()))))
            except coffer.CofferError as e:
                outputs.append(("reveal error", f"{e} {e!r}"))
        tampered = sealed[0].to_json().replace('"c-0"', '"c-9"', 1)
        with pytest.raises(coffer.CofferError) as integrity:
            c.reveal(coffer.SealedRecord.from_json(tampered), tenant="acme", principal="p", roles=["auditor"],
                     purpose="statutory_audit", context={"ticket": "T-1"})
        outputs.append(("tamper error", f"{integrity.value} {integrity.value!r}"))
        # Erasure; forty years on: sweep, approvals, execution.
        c.set_clock(datetime.datetime(2026, 11, 27, tzinfo=datetime.timezone.utc))
        outputs.append(("erasure", json.dumps(c.erase("acme", "s-1", actor="dpo"), ensure_ascii=False)))
        report = c.sweep(actor="ops")
        outputs.append(("sweep", json.dumps(report, ensure_ascii=False)))
        if report["proposed_list"] is not None:
            c.approve(report["proposed_list"], approver="wang", role="archive_head")
            c.approve(report["proposed_list"], approver="li", role="accounting_head")
            outputs.append(("certificate", json.dumps(c.execute(report["proposed_list"], actor="ops"),
                                                      ensure_ascii=False)))
        outputs.append(("bundle", c.archive_export(
            sealed[2:], archive_key=bytes(range(32)), tenant="acme", principal="aud-1", roles=["auditor"],
            purpose="statutory_audit", context={"ticket": "AUD-1", "destination_region": "CN"})))
        outputs.append(("audit export", json.dumps(c.audit.export(), ensure_ascii=False)))
        outputs.append(
            ("expanded audit export", json.dumps(c.audit.export(expanded=True), ensure_ascii=False))
        )
        outputs.append(("checkpoint", c.audit.checkpoint(actor="auditor")))
        outputs.append(("verify", json.dumps(c.audit.verify())))
    with pytest.raises(coffer.CofferError) as wrong:
        coffer.Coffer.open(db, master_key=coffer.generate_master_key())
    outputs.append(("wrong key error", f"{wrong.value} {wrong.value!r}"))
    for what, text in outputs:
        assert_clean(what, text.encode("utf-8"))
    # The store: its file (SQLite), or every row of its tables (PostgreSQL).
    if POSTGRES:
        assert_clean("the store's tables", store_rows(db))
    files = list(tmp_path.iterdir())
    assert files or POSTGRES
    for path in files:
        assert_clean(str(path), path.read_bytes())


def test_no_sentinel_in_the_c_librarys_outputs(tmp_path: pathlib.Path) -> None:
    """The same search over what the C library prints and returns (tests/c/sentinels.c)."""
    if not C_SENTINELS.exists():
        pytest.fail(f"{C_SENTINELS} is missing: build it with `make -C tests/c` (the README's test command does)")
    key = coffer.generate_master_key()
    db = store_location(tmp_path)
    past = datetime.datetime(1986, 1, 6, 9, 0, tzinfo=datetime.timezone.utc)
    with coffer.Coffer.open(db, master_key=key, policy=POLICY, retention=RETENTION, clock=past) as c:
        sealed = [c.seal(record(f"c-{i}", f"s-{i}"), actor="import") for i in range(3)]
    bad = record("c-bad", "s-bad")
    bad["id_documents"][0]["number"] = SENTINELS[1][:17] + "1"
    (tmp_path / "options.json").write_text(json.dumps({"policy": POLICY, "retention": RETENTION}),
                                           encoding="utf-8")
    (tmp_path / "envelopes.json").write_text("[" + ",".join(s.to_json() for s in sealed) + "]",
                                             encoding="utf-8")
    (tmp_path / "invalid.json").write_text(json.dumps(bad, ensure_ascii=False), encoding="utf-8")
    run = subprocess.run(
        [str(C_SENTINELS), str(db), key.hex(), str(tmp_path / "options.json"),
         str(tmp_path / "envelopes.json"), str(tmp_path / "invalid.json")],
        capture_output=True, check=False, timeout=120,
    )
    assert run.returncode == 0, run.stderr.decode(errors="replace")
    printed = run.stdout
    # The run did what it says: failures reported, a destruction certified, the chain intact.
    for expected in (b"seal an invalid record failed", b"reveal a tampered envelope failed",
                     b"open with a wrong key failed", b"== execute", b'"intact":true'):
        assert expected in printed, expected
    # A view holds plaintext for the principal the policy lets see it: those values are the
    # answer, not a leak. Everything else in a view (masks, reasons) is searched.
    blocks = printed.decode("utf-8").split("\n== ")
    searched = []
    for block in blocks:
        header, _, body = block.partition("\n")
        if header.lstrip("= ").startswith("reveal_many") and "failed" not in header:
            views = json.loads(body)
            for view in views:
                for field in view["fields"].values():
                    if field["state"] == "revealed":
                        field.pop("value")
            body = json.dumps(views, ensure_ascii=False)
        searched.append(header + "\n" + body)
    assert_clean("the C library's outputs", "\n".join(searched).encode("utf-8") + run.stderr)
    for name in ("options.json", "envelopes.json", "invalid.json"):
        (tmp_path / name).unlink()
    if POSTGRES:
        assert_clean("the store's tables", store_rows(db))
    for path in tmp_path.iterdir():
        assert_clean(str(path), path.read_bytes())
