"""A value sealed in Python opens through the C library, and one sealed through C opens in
Python: the same store file, the same master key, two languages (tests/c/cross.c)."""

from __future__ import annotations

import json
import os
import pathlib
import subprocess
from typing import List

import pytest

import coffer

from conftest import store_location

ROOT = pathlib.Path(__file__).resolve().parents[3]
POLICY = (ROOT / "examples" / "policies" / "accounting-firm.toml").read_text(encoding="utf-8")
CROSS = pathlib.Path(os.environ.get("COFFER_C_CROSS", ROOT / "tests" / "c" / "build" / "cross_shared"))

RECORD = {
    "id": "x-1",
    "tenant": "firm-a",
    "subject": "s-x",
    "kind": "individual",
    "name": "王五",
    "id_documents": [{"type": "cn_resident_id", "number": "440304199006150048"}],
    "phones": ["021-62345678"],
    "bank_accounts": [{"account_type": "card", "account_number": "6228480076123456782"}],
}
ACCESS = {
    "principal": {"id": "u-1", "tenant": "firm-a", "roles": ["accountant"]},
    "purpose": "payments",
}


def run_c(args: List[str], tmp: pathlib.Path) -> str:
    if not CROSS.exists():
        pytest.fail(f"{CROSS} is missing: build it with `make -C tests/c` (the README's test command does)")
    options = tmp / "options.json"
    options.write_text(json.dumps({"policy": POLICY}), encoding="utf-8")
    env = dict(os.environ, COFFER_CROSS_OPTIONS=str(options))
    done = subprocess.run([str(CROSS), *args], capture_output=True, text=True, env=env, timeout=60)
    assert done.returncode == 0, done.stderr
    return done.stdout


def test_sealed_in_python_opens_in_c(tmp_path: pathlib.Path) -> None:
    key = coffer.generate_master_key()
    db = store_location(tmp_path, "cross.db")
    with coffer.Coffer.open(db, master_key=key, policy=POLICY) as c:
        sealed = c.seal(RECORD, actor="python")
    envelope = tmp_path / "envelope.json"
    envelope.write_text(sealed.to_json(), encoding="utf-8")
    access = tmp_path / "access.json"
    access.write_text(json.dumps(ACCESS), encoding="utf-8")
    view = json.loads(run_c(["reveal", str(db), key.hex(), str(envelope), str(access)], tmp_path))
    assert view["fields"]["name"] == {"state": "revealed", "value": "王五"}
    assert view["fields"]["bank_accounts[0].account_number"]["value"] == "6228480076123456782"


def test_sealed_in_c_opens_in_python(tmp_path: pathlib.Path) -> None:
    key = coffer.generate_master_key()
    db = store_location(tmp_path, "cross.db")
    coffer.Coffer.open(db, master_key=key, policy=POLICY).close()
    record = tmp_path / "record.json"
    record.write_text(json.dumps(RECORD, ensure_ascii=False), encoding="utf-8")
    envelope = run_c(["seal", str(db), key.hex(), str(record), "c-import"], tmp_path).strip()
    with coffer.Coffer.open(db, master_key=key, policy=POLICY) as c:
        sealed = coffer.SealedRecord.from_json(envelope)
        view = c.reveal(sealed, tenant="firm-a", principal="u-1", roles=["accountant"], purpose="payments")
        assert view.value("name") == "王五"
        assert view.value("id_documents[0].number") == "440304199006150048"
        # The blind index computed in C is the one Python computes for the same value.
        tokens = c.search("id_documents[].number", "440304 19900615 0048", tenant="firm-a", principal="accountant-1", roles=["accountant"], purpose="payments").tokens[0]
        assert sealed.index["id_documents[0].number"][str(tokens[0].epoch)] == tokens[0].token
        # Both seals are in one audit chain, and it verifies.
        assert c.audit.verify()["intact"]


def test_a_store_made_by_an_earlier_build_opens_from_python(tmp_path: pathlib.Path) -> None:
    """The fixture store of tests/vectors/store-v3 (made once, by the Rust core of coffer 0.1.0)
    opens from Python and through the C library: same keys, same values, same index tokens
    (tests/store_format.rs checks the rest)."""
    import datetime
    import shutil

    fixture_dir = ROOT / "tests" / "vectors" / "store-v3"
    fixture = json.loads((fixture_dir / "fixture.json").read_text(encoding="utf-8"))
    shutil.copy(fixture_dir / "store.db", tmp_path / "store.db")
    retention = (ROOT / "examples" / "policies" / "retention.toml").read_text(encoding="utf-8")
    with pytest.raises(coffer.WrongMasterKeyError):
        coffer.Coffer.open(tmp_path / "store.db", master_key=os.urandom(32), create=False)
    vault = coffer.Coffer.open(
        tmp_path / "store.db",
        master_key=bytes.fromhex(fixture["master_key_hex"]),
        policy=POLICY,
        retention=retention,
        create=False,
        clock=datetime.datetime.fromisoformat(fixture["clock"].replace("Z", "+00:00")),
    )
    assert vault.audit.verify()["intact"]
    for text, want in zip(fixture["envelopes"], fixture["views_as_auditor"]):
        view = vault.reveal(
            coffer.SealedRecord.from_json(text),
            tenant=fixture["tenant"],
            principal="auditor-1",
            roles=["auditor"],
            purpose="statutory_audit",
            context={"ticket": "AUD-2026-001", "destination_region": "CN"},
        )
        assert view.record == want["record"]
        got = {
            path: {k: v for k, v in (("state", f.state), ("value", f.value), ("reason", f.reason)) if v is not None}
            for path, f in view.items()
        }
        assert got == want["fields"]
    for s in fixture["search"]:
        # A search is an access: an accountant searches ID numbers, a clerk phones.
        role, purpose = (
            ("clerk", "bookkeeping") if s["field"].startswith("phones") else ("accountant", "payments")
        )
        tokens = vault.search(
            s["field"], s["value"], tenant=fixture["tenant"], principal=f"{role}-1", roles=[role],
            purpose=purpose,
        ).tokens[0]
        assert [{"epoch": t.epoch, "token": t.token} for t in tokens] == s["tokens"]
    vault.close()

    # And through the C library, on the same copy.
    access = tmp_path / "access.json"
    access.write_text(
        json.dumps(
            {
                "principal": {"id": "auditor-1", "tenant": fixture["tenant"], "roles": ["auditor"]},
                "purpose": "statutory_audit",
                "context": {"ticket": "AUD-2026-001", "destination_region": "CN"},
            }
        ),
        encoding="utf-8",
    )
    for i, (text, want) in enumerate(zip(fixture["envelopes"], fixture["views_as_auditor"])):
        envelope = tmp_path / f"envelope-{i}.json"
        envelope.write_text(text, encoding="utf-8")
        args = ["reveal", str(tmp_path / "store.db"), fixture["master_key_hex"], str(envelope), str(access)]
        view = json.loads(run_c(args, tmp_path))
        assert {"record": view["record"], "fields": view["fields"]} == want
