"""The store from Python: seal, reveal, search, audit, known answers, errors and threads."""

from __future__ import annotations

import collections
import copy
import datetime
import gc
import inspect
import json
import pathlib
import pickle
import sqlite3
import sys
import threading
import types
import weakref
from collections.abc import Mapping
from typing import Any, Dict, Iterator, List

import pytest

import coffer

from conftest import store_location

ROOT = pathlib.Path(__file__).resolve().parents[3]
POLICY = (ROOT / "examples" / "policies" / "accounting-firm.toml").read_text(encoding="utf-8")
RETENTION = (ROOT / "examples" / "policies" / "retention.toml").read_text(encoding="utf-8")

RECORD: Dict[str, Any] = {
    "id": "c-1",
    "tenant": "firm-a",
    "subject": "s-1",
    "kind": "individual",
    "name": "张三",
    "id_documents": [{"type": "cn_resident_id", "number": "110101 19800101 0037"}],
    "phones": ["+86 139 1234 5678"],
    "bank_accounts": [{"account_type": "card", "account_number": "6222021001123456789"}],
}


@pytest.fixture()
def store(tmp_path: pathlib.Path) -> Iterator[coffer.Coffer]:
    key = coffer.generate_master_key()
    with coffer.Coffer.open(store_location(tmp_path), master_key=key, policy=POLICY, retention=RETENTION) as c:
        yield c


def accountant(c: coffer.Coffer, sealed: coffer.SealedRecord) -> coffer.View:
    return c.reveal(sealed, tenant="firm-a", principal="u-1", roles=["accountant"], purpose="payments")


def test_sealed_records_cross_natively_and_as_json(store: coffer.Coffer) -> None:
    """Sealed and revealed in Python, an envelope stays native (no JSON written or read,
    issue 18); its JSON, when asked for, opens the same way, and bad JSON is refused when it
    is revealed, as before."""
    sealed = store.seal_many([dict(RECORD, id=f"n-{i}") for i in range(5)], actor="import")
    natives = [s for s in sealed if isinstance(s, coffer.SealedRecord)]
    assert len(natives) == 5 and all(s._text is None for s in natives)
    views = store.reveal_many(natives, tenant="firm-a", principal="u-1", roles=["accountant"], purpose="payments")
    assert [v.record for v in views] == [f"n-{i}" for i in range(5)]
    assert all(s._text is None for s in natives)
    # From its JSON: equal, and the same view.
    again = [coffer.SealedRecord.from_json(s.to_json()) for s in natives]
    assert again == natives and all(a._native is None for a in again)
    views2 = store.reveal_many(again, tenant="firm-a", principal="u-1", roles=["accountant"], purpose="payments")
    assert [v.value("name") for v in views2] == [v.value("name") for v in views] == ["张三"] * 5
    # Pickled and copied as its JSON (a worker process can reveal it).
    import copy
    import pickle

    for moved in (pickle.loads(pickle.dumps(natives[1])), copy.deepcopy(natives[1])):
        assert moved == natives[1] and moved._native is None
        assert accountant(store, moved).value("name") == "张三"
    # A changed ciphertext: an integrity error at reveal, from a native or a JSON envelope.
    env = json.loads(natives[0].to_json())
    ct = env["fields"]["name"]["ct"]
    env["fields"]["name"]["ct"] = ("B" if ct[0] == "A" else "A") + ct[1:]
    with pytest.raises(coffer.IntegrityError):
        accountant(store, coffer.SealedRecord.from_json(json.dumps(env)))
    with pytest.raises(TypeError):
        store.reveal_many([natives[0], "not sealed"], tenant="firm-a", principal="u-1",  # type: ignore[list-item]
                          roles=["accountant"], purpose="payments")


def test_revealing_leaves_the_garbage_collector_as_it_found_it(store: coffer.Coffer) -> None:
    """Building a batch's views holds Python's cyclic collector off (issue 18); afterwards it
    runs again if it ran before, and stays off if the host had turned it off."""
    import gc

    sealed = store.seal_many([dict(RECORD, id=f"g-{i}") for i in range(3)], actor="import")
    natives = [s for s in sealed if isinstance(s, coffer.SealedRecord)]
    assert gc.isenabled()
    views = store.reveal_many(natives, tenant="firm-a", principal="u-1", roles=["accountant"], purpose="payments")
    assert len(views) == 3 and gc.isenabled()
    gc.disable()
    try:
        store.reveal_many(natives, tenant="firm-a", principal="u-1", roles=["accountant"], purpose="payments")
        assert not gc.isenabled()
    finally:
        gc.enable()
    # A refused batch (no principal) does not leave it off either.
    with pytest.raises(coffer.InvalidArgumentError):
        store.reveal_many(natives, tenant="firm-a", principal="", roles=["accountant"], purpose="payments")
    assert gc.isenabled()


def test_seal_reveal_round_trip(store: coffer.Coffer) -> None:
    sealed = store.seal(RECORD, actor="import")
    text = sealed.to_json()
    assert "张三" not in text and "6222021001123456789" not in text
    again = coffer.SealedRecord.from_json(text)
    assert again == sealed and again.tenant == "firm-a" and again.record_id == "c-1"
    view = accountant(store, again)
    assert view["name"] == coffer.FieldView("revealed", "张三", None)
    # Normalised when sealed: the spaces are gone.
    assert view.value("id_documents[0].number") == "110101198001010037"
    assert view.value("bank_accounts[0].account_number") == "6222021001123456789"
    assert view.audit_seq > 0 and len(view.policy_version) == 64
    # Built natively: the package's own classes, with their value-free repr.
    assert type(view) is coffer.View and type(view["name"]) is coffer.FieldView
    assert "张三" not in repr(view) and "张三" not in repr(view["name"])
    many = store.reveal_many([again, again], tenant="firm-a", principal="u-1", roles=["accountant"],
                             purpose="payments")
    assert [type(v) for v in many] == [coffer.View, coffer.View] and many[1]["name"] == view["name"]


def test_field_views_are_whole_named_tuples(store: coffer.Coffer, monkeypatch: pytest.MonkeyPatch) -> None:
    # Field views are made natively in place (issue 18): each must be a complete FieldView that
    # owns its items, alive after its view, its batch and a collection are gone.
    sealed = [s for s in store.seal_many([dict(RECORD, id=f"f-{i}") for i in range(50)], actor="import")
              if isinstance(s, coffer.SealedRecord)]
    views = store.reveal_many(sealed, tenant="firm-a", principal="u-2", roles=["clerk"], purpose="bookkeeping")
    kept = [(v["name"], v["phones[0]"], v["bank_accounts[0].account_number"]) for v in views]
    del views, sealed
    gc.collect()
    for name, phone, account in kept:
        assert type(name) is coffer.FieldView and isinstance(name, tuple) and len(name) == 3
        assert name.value == "张三" and name == ("revealed", "张三", None)
        state, value, reason = phone
        assert (state, value, reason) == ("masked", "139****5678", None) == tuple(phone)
        assert account.state == "denied" and account.value is None
        assert "default deny" in (account.reason or "")
        assert account._replace(reason=None) == ("denied", None, None)
        assert pickle.loads(pickle.dumps(account)) == account and hash(account) == hash(tuple(account))
        # Held by its tuple in `kept`, the loop's `name` and getrefcount's argument: no more.
        # (Counted outside the asserts, whose rewriting by pytest holds values of its own.)
        count = sys.getrefcount(name)
        assert count == 3
        # An item is held by its field view alone (and getrefcount's argument).
        count = sys.getrefcount(account.reason)
        assert count == 2
        # Strings and None cannot make a cycle: the collector does not track them.
        assert not gc.is_tracked(name) and not gc.is_tracked(account)
    # A FieldView laid out otherwise (here with a __dict__) is made through tuple.__new__.
    class Wider(coffer.FieldView):
        pass
    monkeypatch.setattr(coffer._vault, "FieldView", Wider)
    view = accountant(store, store.seal(RECORD, actor="import"))
    assert type(view["name"]) is Wider and view["name"] == ("revealed", "张三", None)
    assert gc.is_tracked(view["name"])  # It has a __dict__, which could hold a cycle.


def test_a_view_reads_its_fields_natively(store: coffer.Coffer) -> None:
    sealed = [s for s in store.seal_many([dict(RECORD, id=f"l-{i}") for i in range(4)], actor="import")
              if isinstance(s, coffer.SealedRecord)]
    views = store.reveal_many(sealed, tenant="firm-a", principal="u-2", roles=["clerk"], purpose="bookkeeping")
    store.close()  # A view needs nothing more from the store.
    first, second, third, fourth = views
    # One value at a time, each state, with no FieldView made.
    assert first.value("name") == "张三" and first.value("phones[0]") == "139****5678"
    assert first.value("bank_accounts[0].account_number") is None and first.value("nope") is None
    # The mapping, its methods running natively: each field view made when asked for.
    assert isinstance(first, Mapping) and len(first) == 6 and "name" in first
    assert first["phones[0]"] == ("masked", "139****5678", None) and type(first["name"]) is coffer.FieldView
    assert list(first) == sorted(first) and list(first.keys()) == list(first)
    assert dict(first.items())["name"] == first["name"] == first.get("name")
    # Its keys, items and values, iterated natively, are still Mapping's set-like views.
    for view in (first, copy.copy(first)):
        assert view.keys() == set(view) and view.keys() & {"name", "nope"} == {"name"}
        assert ("name", view["name"]) in view.items() and list(view.items()) == [(p, view[p]) for p in view]
        assert list(view.values()) == [view[p] for p in view] and view["name"] in view.values()
        assert isinstance(view.items(), collections.abc.ItemsView) and len(view.values()) == 6
    for missing in ("nope", 1, None, b"name", "\ud800"):
        assert missing not in first and first.get(missing) is None  # type: ignore[arg-type]
        with pytest.raises(KeyError):
            first[missing]  # type: ignore[index]
    assert first == second and dict(first) == dict(second)  # Same record, same fields.
    with pytest.raises(TypeError):
        hash(first)
    # Read-only: nothing can be set on a view.
    with pytest.raises(AttributeError):
        first.record = "other"  # type: ignore[misc]
    with pytest.raises(AttributeError):
        first.extra = 1  # type: ignore[attr-defined]
    # Copied and pickled with its fields made, equal to the original, and read the same way.
    for moved in (pickle.loads(pickle.dumps(third)), copy.deepcopy(third), copy.copy(third)):
        assert type(moved) is coffer.View and moved == first and moved.record == "l-2"
        assert moved.audit_seq == third.audit_seq and moved.policy_version == third.policy_version
        assert moved.value("name") == "张三" and moved.value("bank_accounts[0].account_number") is None
        assert moved.value("nope") is None and "name" in moved and 1 not in moved  # type: ignore[comparison-overlap]
        with pytest.raises(KeyError):
            moved["nope"]
    # Many threads reading the same view at once see the same fields.
    seen: List[Dict[str, Any]] = []
    threads = [threading.Thread(target=lambda: seen.append(dict(fourth))) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(seen) == 8 and all(s == dict(first) for s in seen)


def test_a_view_from_its_json_form_and_from_parts(store: coffer.Coffer) -> None:
    parsed = {"record": "r-1", "policy_version": "7", "audit_seq": 12, "fields": {
        "name": {"state": "revealed", "value": "张三"},
        "phones[0]": {"state": "masked", "value": "139****5678"},
        "bank_accounts[0].account_number": {"state": "denied", "reason": "default deny"},
        "emails[0]": {"state": "shredded"},
    }}
    view = coffer.View(parsed)
    assert (view.record, view.policy_version, view.audit_seq) == ("r-1", "7", 12)
    assert view["name"] == ("revealed", "张三", None) and view.value("phones[0]") == "139****5678"
    assert view["emails[0]"].state == "shredded" and view.value("emails[0]") is None
    assert "张三" not in repr(view) and "'name': 'revealed'" in repr(view)
    # From parts, as pickles of earlier versions name it: the dict is copied, not shared.
    fields = dict(view)
    again = coffer.View._of("r-1", "7", 12, fields)
    fields.clear()
    assert again == view and len(again) == 4
    with pytest.raises(TypeError):
        coffer._native.ViewBase("r", "p", 1, [])  # type: ignore[arg-type]
    with pytest.raises(OverflowError):
        coffer.View(dict(parsed, audit_seq=-1))


def test_a_view_in_a_cycle_is_collected() -> None:
    # A view made from a dict holds what the dict held; when that leads back to the view, the
    # cycle collector must see the view's references to free them.
    class Holder:
        view: object = None

    for made in ("parts", "pickle"):
        holder = Holder()
        view = coffer.View._of("r-1", "7", 12, {"name": holder})  # type: ignore[dict-item]
        if made == "pickle":
            view = copy.copy(view)
        holder.view = view
        gone = weakref.ref(holder)
        del holder, view
        gc.collect()
        assert gone() is None, made


def test_clerk_sees_masked_and_denied(store: coffer.Coffer) -> None:
    sealed = store.seal(RECORD, actor="import")
    view = store.reveal(sealed, tenant="firm-a", principal="u-2", roles=["clerk"], purpose="bookkeeping")
    assert view["phones[0]"].state == "masked" and view.value("phones[0]") == "139****5678"
    assert view["bank_accounts[0].account_number"].state == "denied"
    assert view["bank_accounts[0].account_number"].value is None
    assert "default deny" in (view["bank_accounts[0].account_number"].reason or "")


def test_repr_never_shows_values(store: coffer.Coffer) -> None:
    sealed = store.seal(RECORD, actor="import")
    view = accountant(store, sealed)
    for text in (repr(view), repr(view["name"]), repr(sealed), str(sealed), repr(store)):
        assert "张三" not in text and "6222021001123456789" not in text and "110101" not in text
    assert "<redacted>" in repr(view["name"])


def test_search_by_resident_id(store: coffer.Coffer) -> None:
    sealed = store.seal(RECORD, actor="import")
    tokens = store.search("id_documents[].number", "110101198001010037", tenant="firm-a", principal="accountant-1", roles=["accountant"], purpose="payments").tokens[0]
    assert len(tokens) == 1 and tokens[0].epoch == 1
    column = sealed.index["id_documents[0].number"]
    assert column[str(tokens[0].epoch)] == tokens[0].token
    other = store.search("id_documents[].number", "310104197512310025", tenant="firm-a", principal="accountant-1", roles=["accountant"], purpose="payments").tokens[0]
    assert other[0].token != tokens[0].token


def test_batches(store: coffer.Coffer) -> None:
    bad = dict(RECORD, id="c-bad", id_documents=[{"type": "cn_resident_id", "number": "110101198001010030"}])
    results = store.seal_many([RECORD, bad, dict(RECORD, id="c-2")], actor="import")
    assert isinstance(results[0], coffer.SealedRecord) and isinstance(results[2], coffer.SealedRecord)
    assert isinstance(results[1], coffer.ValidationError) and isinstance(results[1], ValueError)
    assert "110101198001010030" not in str(results[1])
    sealed = [r for r in results if isinstance(r, coffer.SealedRecord)]
    views = store.reveal_many(sealed, tenant="firm-a", principal="u-1", roles=["accountant"], purpose="payments")
    assert [v.record for v in views] == ["c-1", "c-2"]
    assert all(v.value("name") == "张三" for v in views)


def test_a_batch_keeps_each_records_read_error_in_its_slot(store: coffer.Coffer) -> None:
    deep: Any = "x"
    for _ in range(40):
        deep = [deep]
    items: List[Any] = [
        RECORD,
        dict(RECORD, id="c-m", nmae="x"),
        json.dumps(dict(RECORD, id="c-s"), ensure_ascii=False),
        "{not json",
        json.dumps(dict(RECORD, id="c-b")).encode(),
        dict(RECORD, id="c-d", custom={"k": deep}),
        b'{"id":"\xff"}',
        dict(RECORD, id="c-2"),
    ]
    results = store.seal_many(items, actor="import")
    assert [type(r).__name__ for r in results] == [
        "SealedRecord", "MalformedError", "SealedRecord", "MalformedError",
        "SealedRecord", "LimitExceededError", "MalformedError", "SealedRecord",
    ]
    sealed = [r for r in results if isinstance(r, coffer.SealedRecord)]
    assert [s.record_id for s in sealed] == ["c-1", "c-s", "c-b", "c-2"]
    views = store.reveal_many(sealed, tenant="firm-a", principal="u-1", roles=["accountant"], purpose="payments")
    assert all(v.value("name") == "张三" for v in views)
    with pytest.raises(TypeError):
        store.seal_many([RECORD, object()], actor="import")  # type: ignore[list-item]


def test_any_mapping_is_a_record(store: coffer.Coffer) -> None:
    # A dict goes to the native module as it is; other mappings (a dict subclass, a read-only
    # view) are copied into a dict first.
    kinds = [dict(RECORD, id="m-1"), collections.OrderedDict(RECORD, id="m-2"), types.MappingProxyType(dict(RECORD, id="m-3"))]
    sealed = store.seal_many(kinds, actor="import")
    assert [s.record_id for s in sealed if isinstance(s, coffer.SealedRecord)] == ["m-1", "m-2", "m-3"]
    assert store.seal(types.MappingProxyType(RECORD), actor="import").record_id == "c-1"


def test_tampering_and_transplanting_are_integrity_errors(store: coffer.Coffer) -> None:
    sealed = store.seal(RECORD, actor="import")
    env = json.loads(sealed.to_json())
    ct = env["fields"]["name"]["ct"]
    env["fields"]["name"]["ct"] = ("B" if ct[0] == "A" else "A") + ct[1:]
    with pytest.raises(coffer.IntegrityError):
        accountant(store, coffer.SealedRecord(json.dumps(env)))
    # The name's ciphertext moved to another record: refused, not revealed as that record's.
    other = json.loads(store.seal(dict(RECORD, id="c-2", name="李四"), actor="import").to_json())
    env = json.loads(sealed.to_json())
    env["fields"]["name"] = other["fields"]["name"]
    with pytest.raises(coffer.IntegrityError) as err:
        accountant(store, coffer.SealedRecord(json.dumps(env)))
    assert "李四" not in str(err.value)
    with pytest.raises(coffer.IntegrityError):
        coffer.SealedRecord.from_json("{not json")


def test_wrong_key_and_bad_arguments(tmp_path: pathlib.Path) -> None:
    key = coffer.generate_master_key()
    assert len(key) == 32 and key != coffer.generate_master_key()
    coffer.Coffer.open(tmp_path / "c.db", master_key=key).close()
    with pytest.raises(coffer.WrongMasterKeyError):
        coffer.Coffer.open(tmp_path / "c.db", master_key=coffer.generate_master_key())
    with pytest.raises(coffer.InvalidArgumentError):
        coffer.Coffer.open(tmp_path / "c.db", master_key=key[:31])
    with pytest.raises(TypeError):
        coffer.Coffer.open(tmp_path / "c.db", master_key="not bytes")  # type: ignore[arg-type]
    with pytest.raises(coffer.PolicyError):
        coffer.Coffer.open(tmp_path / "c.db", master_key=key, policy="version = 1\n[[rules]]\nid = 3\n")
    # Tuning options: checked as the C API's open options are.
    coffer.Coffer.open(tmp_path / "c.db", master_key=key, data_key_cache=100, busy_timeout_ms=50).close()
    with pytest.raises(coffer.InvalidArgumentError):
        coffer.Coffer.open(tmp_path / "c.db", master_key=key, data_key_cache=-1)
    with pytest.raises(TypeError):
        coffer.Coffer.open(tmp_path / "c.db", master_key=key, busy_timeout_ms="5s")  # type: ignore[arg-type]
    with coffer.Coffer.open(tmp_path / "c.db", master_key=key, policy=POLICY) as c:
        # Wrong types are TypeError, as in the rest of the module.
        with pytest.raises(TypeError):
            c.seal({1: "x"}, actor="t")  # type: ignore[dict-item]
        with pytest.raises(coffer.MalformedError):
            c.seal(b"\xc3\x28", actor="t")
        with pytest.raises(TypeError):
            c.seal(42, actor="t")  # type: ignore[arg-type]
        sealed = c.seal(RECORD, actor="t")
        with pytest.raises(TypeError):
            c.reveal(sealed, tenant="firm-a", principal="u", roles="accountant", purpose="payments")
        with pytest.raises(coffer.InvalidArgumentError):
            c.reveal(sealed, tenant="firm-a", principal="u", roles=["accountant"], purpose="payments",
                     context={"time": "noon"})
    with pytest.raises(coffer.ClosedError):
        c.seal(RECORD, actor="t")
    assert c.closed and "closed" in repr(c)


def test_audit_export_expanded_has_a_line_per_event(store: coffer.Coffer) -> None:
    store.seal_many([dict(RECORD, id=f"x-{i}") for i in range(3)], actor="import")
    stored = store.audit.export()
    events = store.audit.export(expanded=True)
    batch = [e for e in stored if e["kind"] == "seal.batch"]
    assert len(batch) == 1 and "mac" in batch[0]
    assert not any(e["kind"].endswith(".batch") for e in events)
    assert all("mac" not in e for e in events)
    seals = [e for e in events if e["kind"] == "seal"]
    assert [e["item"] for e in seals] == [0, 1, 2]
    assert [e["record"] for e in seals] == ["x-0", "x-1", "x-2"]
    assert {e["seq"] for e in seals} == {batch[0]["seq"]}
    assert len(events) > len(stored)


def test_audit_verifies_and_detects_tampering(tmp_path: pathlib.Path) -> None:
    key = coffer.generate_master_key()
    path = tmp_path / "c.db"
    with coffer.Coffer.open(path, master_key=key, policy=POLICY) as c:
        sealed = c.seal(RECORD, actor="import")
        accountant(c, sealed)
        checkpoint = c.audit.checkpoint(actor="ops")
        report = c.audit.verify(checkpoint)
        assert report["intact"] and report["checkpoint_checked"]
        entries = c.audit.export()
        assert len(entries) == report["entries"]
        text = json.dumps(entries, ensure_ascii=False)
        assert "张三" not in text and "6222021001123456789" not in text
        assert len(c.signing_public_key()) == 32
    db = sqlite3.connect(path)
    table = [r[0] for r in db.execute("SELECT name FROM sqlite_master WHERE type='table'") if "audit" in r[0]][0]
    db.execute(f"DELETE FROM {table} WHERE seq = 2")
    db.commit()
    db.close()
    with coffer.Coffer.open(path, master_key=key, policy=POLICY) as c:
        report = c.audit.verify(checkpoint)
        assert not report["intact"] and report["first_problem"] is not None


def test_known_answer_envelopes_open_in_python() -> None:
    vectors = json.loads((ROOT / "tests" / "vectors" / "envelopes.json").read_text(encoding="utf-8"))
    assert len(vectors["cases"]) >= 2
    for case in vectors["cases"]:
        assert coffer.open_with_keys(case["envelope"], case) == case["plaintexts"]
        env = json.loads(case["envelope"])
        ct = env["fields"]["name"]["ct"]
        env["fields"]["name"]["ct"] = ("B" if ct[0] == "A" else "A") + ct[1:]
        with pytest.raises(coffer.IntegrityError):
            coffer.open_with_keys(json.dumps(env), case)


def test_eight_threads_share_one_coffer(store: coffer.Coffer) -> None:
    errors: List[BaseException] = []

    def work(n: int) -> None:
        try:
            for i in range(20):
                sealed = store.seal(dict(RECORD, id=f"t-{n}-{i}"), actor=f"thread-{n}")
                assert accountant(store, sealed).value("name") == "张三"
        except BaseException as e:  # noqa: BLE001 - reported below
            errors.append(e)

    threads = [threading.Thread(target=work, args=(n,)) for n in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors, errors
    assert store.audit.verify()["intact"]


def test_retention_with_a_replaced_clock(tmp_path: pathlib.Path) -> None:
    key = coffer.generate_master_key()
    start = datetime.datetime(2026, 1, 5, 9, 0, tzinfo=datetime.timezone.utc)
    with coffer.Coffer.open(
        tmp_path / "c.db", master_key=key, policy=POLICY, retention=RETENTION, clock=start
    ) as c:
        sealed = c.seal(RECORD, actor="import")
        # A hold blocks erasure; nothing is destroyed.
        hold = c.place_hold(tenant="firm-a", subject="s-1", reason="claim 17", actor="counsel")
        assert [h["reason"] for h in c.holds()] == ["claim 17"]
        with pytest.raises(coffer.LegalHoldError):
            c.erase("firm-a", "s-1", actor="dpo")
        assert accountant(c, sealed).value("name") == "张三"
        c.release_hold(hold, actor="counsel")
        # Events in the future (by the store's clock) are refused.
        with pytest.raises(coffer.InvalidArgumentError):
            c.record_event("firm-a", "s-1", "relationship_ended", datetime.date(2026, 2, 1), actor="erp")
        c.record_event("firm-a", "s-1", "relationship_ended", datetime.date(2026, 1, 2), actor="erp")
        answer = c.erase("firm-a", "s-1", actor="dpo")
        outcomes = {item["category"]: item["outcome"] for item in answer["items"]}
        assert outcomes["contact"] == "destroyed" and outcomes["identity"] == "restricted"
        certificate = answer["certificate"]
        coffer.verify_certificate(json.dumps(certificate), c.signing_public_key())
        # Changed, or with an unsigned field added: refused.
        for forged in (dict(certificate, actor="someone-else"), dict(certificate, subject="s-2")):
            with pytest.raises(coffer.CofferError):
                coffer.verify_certificate(json.dumps(forged), c.signing_public_key())
        view = c.reveal(sealed, tenant="firm-a", principal="u-1", roles=["accountant"], purpose="payments")
        assert all(f.value is None for f in view.values())
        # Thirty-one years on, the sweep has nothing left to keep for accounting: it proposes
        # the rest for destruction, which two approvers must sign off.
        c.set_clock(datetime.datetime(2057, 3, 1, tzinfo=datetime.timezone.utc))
        report = c.sweep(actor="ops")
        assert report["proposed_list"] is not None
        with pytest.raises(coffer.ApprovalError):
            c.execute(report["proposed_list"], actor="ops")
        c.approve(report["proposed_list"], approver="wang", role="archive_head")
        c.approve(report["proposed_list"], approver="li", role="accounting_head")
        c.execute(report["proposed_list"], actor="ops")
        auditor = c.reveal(sealed, tenant="firm-a", principal="a-1", roles=["auditor"],
                           purpose="statutory_audit", context={"ticket": "AUD-9"})
        assert auditor["name"].state == "shredded"
    with pytest.raises(TypeError):
        coffer.Coffer.open(tmp_path / "d.db", master_key=key, clock="2026-01-01")  # type: ignore[arg-type]
    with pytest.raises(coffer.InvalidArgumentError):
        coffer.Coffer.open(tmp_path / "d.db", master_key=key, clock=datetime.datetime(2026, 1, 1))


def test_rotations_keep_records_readable(tmp_path: pathlib.Path) -> None:
    key, new_key = coffer.generate_master_key(), coffer.generate_master_key()
    with coffer.Coffer.open(tmp_path / "c.db", master_key=key, policy=POLICY) as c:
        sealed = c.seal(RECORD, actor="import")
        assert c.rotate_kek(actor="ops") == 2
        assert c.rotate_data_key("firm-a", "s-1", "identity", actor="ops") == 2
        epoch = c.rotate_index_key(actor="ops")
        assert epoch == 2
        assert len(c.search("id_documents[].number", "110101198001010037", tenant="firm-a", principal="accountant-1", roles=["accountant"], purpose="payments").tokens[0]) == 2
        c.retire_index_epoch(1, actor="ops")
        c.rotate_master_key(new_key, actor="ops")
        assert accountant(c, sealed).value("name") == "张三"
    with pytest.raises(coffer.WrongMasterKeyError):
        coffer.Coffer.open(tmp_path / "c.db", master_key=key)
    with coffer.Coffer.open(tmp_path / "c.db", master_key=new_key, policy=POLICY) as c:
        assert accountant(c, sealed).value("name") == "张三"


def test_audit_subscribers_see_every_commit(store: coffer.Coffer, monkeypatch: pytest.MonkeyPatch) -> None:
    seen: List[Dict[str, Any]] = []
    store.audit.subscribe(seen.append)
    sealed = store.seal(RECORD, actor="import")
    accountant(store, sealed)
    kinds = [e["kind"] for e in seen]
    # The subject's data keys are created with the first seal, under one entry naming each.
    assert kinds == ["key.create", "seal", "reveal"], kinds
    assert len(seen[0]["detail"]["keys"].split(",")) == 3, seen[0]
    assert [e["seq"] for e in seen] == sorted(e["seq"] for e in seen)
    assert "张三" not in json.dumps(seen, ensure_ascii=False)

    def broken(entry: Dict[str, Any]) -> None:
        raise RuntimeError("subscriber bug")

    unraisable: List[Any] = []
    monkeypatch.setattr(sys, "unraisablehook", unraisable.append)
    store.audit.subscribe(broken)
    store.seal(dict(RECORD, id="c-2"), actor="import")  # the commit stands
    assert unraisable and unraisable[0].exc_type is RuntimeError
    assert store.audit.verify()["intact"]
    with pytest.raises(TypeError):
        store.audit.subscribe(42)  # type: ignore[arg-type]


SUBSCRIBE_WHILE_NOTIFYING = r"""
import sys, threading, time
import coffer

path, policy = sys.argv[1], open(sys.argv[2], encoding="utf-8").read()
record = {"tenant": "firm-a", "kind": "individual", "name": "张三",
          "id_documents": [{"type": "cn_resident_id", "number": "110101198001010037"}],
          "phones": ["13800000000"]}
with coffer.Coffer.open(path, master_key=coffer.generate_master_key(), policy=policy) as c:
    seen = []
    c.audit.subscribe(seen.append)
    stop = threading.Event()

    def seal(t: int) -> None:
        n = 0
        while not stop.is_set():
            n += 1
            c.seal(dict(record, id=f"c-{t}-{n}"), actor="import")

    threads = [threading.Thread(target=seal, args=(t,)) for t in range(4)]
    for t in threads:
        t.start()
    # Subscribing (the GIL held by this thread) while the sealing threads notify (each waiting
    # for the GIL to call a subscriber): deadlocked before the list was snapshotted.
    deadline = time.monotonic() + 3
    while time.monotonic() < deadline:
        for _ in range(50):
            c.audit.subscribe(lambda entry: None)
        time.sleep(0.001)
    stop.set()
    for t in threads:
        t.join()
    print(len(seen))
    assert len(c.audit.verify()) and c.audit.verify()["intact"]
"""


def test_subscribing_while_entries_are_notified_does_not_deadlock(tmp_path: pathlib.Path) -> None:
    import subprocess

    script = tmp_path / "race.py"
    script.write_text(SUBSCRIBE_WHILE_NOTIFYING, encoding="utf-8")
    policy = ROOT / "examples" / "policies" / "accounting-firm.toml"
    done = subprocess.run(
        [sys.executable, str(script), str(tmp_path / "race.db"), str(policy)],
        capture_output=True, text=True, timeout=60,
    )
    assert done.returncode == 0, done.stderr
    assert int(done.stdout.strip()) > 0


def test_archives_verify_offline_and_restore_elsewhere(tmp_path: pathlib.Path) -> None:
    archive_key = bytes(range(32))
    with coffer.Coffer.open(tmp_path / "a.db", master_key=coffer.generate_master_key(), policy=POLICY) as a:
        sealed = [a.seal(dict(RECORD, id=f"c-{i}"), actor="import") for i in range(3)]
        exporter: Dict[str, Any] = dict(
            tenant="firm-a", principal="aud-1", roles=["auditor"], purpose="statutory_audit",
            context={"ticket": "AUD-1", "destination_region": "CN"},
        )
        with pytest.raises(coffer.AccessDeniedError):
            a.archive_export(sealed, archive_key=archive_key, tenant="firm-a", principal="u-2",
                             roles=["clerk"], purpose="bookkeeping")
        bundle = a.archive_export(sealed, archive_key=archive_key, **exporter)
        assert "envelope_mac_key" not in bundle
        public_key = a.signing_public_key()
    assert "张三" not in bundle
    check = coffer.verify_archive(bundle, public_key, archive_key)
    assert check.envelopes == 3 and check.contents_checked and check.shredded == 0
    assert not coffer.verify_archive(bundle, public_key).contents_checked
    parsed = json.loads(bundle)
    parsed["envelopes"][1] = parsed["envelopes"][1].replace('"c-1"', '"c-9"')
    assert parsed["envelopes"][1] != json.loads(bundle)["envelopes"][1]
    for signed_or_checked in (None, archive_key):
        with pytest.raises(coffer.CofferError):
            coffer.verify_archive(json.dumps(parsed), public_key, signed_or_checked)
    with pytest.raises(coffer.CofferError):
        coffer.verify_archive(bundle, bytes(32), archive_key)
    with coffer.Coffer.open(tmp_path / "b.db", master_key=coffer.generate_master_key(), policy=POLICY) as b:
        with pytest.raises(coffer.CofferError):
            b.archive_restore(bundle, archive_key=bytes(32), public_key=public_key, actor="ops")
        restored = b.archive_restore(bundle, archive_key=archive_key, public_key=public_key, actor="ops")
        assert [s.record_id for s in restored] == ["c-0", "c-1", "c-2"]
        assert accountant(b, restored[1]).value("name") == "张三"


def test_a_rate_limit_holds_when_the_store_is_opened_again(tmp_path: pathlib.Path) -> None:
    """The counts live in the store: running a harvesting script again starts nothing afresh
    (`sensitive-per-hour`: 200 sensitive fields an hour for an accountant)."""
    key = coffer.generate_master_key()
    records = [dict(RECORD, id=f"c-{i}", subject=f"s-{i}") for i in range(150)]
    with coffer.Coffer.open(tmp_path / "c.db", master_key=key, policy=POLICY) as c:
        sealed = c.seal_many(records, actor="import")
    envelopes = [s for s in sealed if isinstance(s, coffer.SealedRecord)]
    assert len(envelopes) == 150

    def harvest(batch: List[coffer.SealedRecord]) -> List[str]:
        with coffer.Coffer.open(tmp_path / "c.db", master_key=key, policy=POLICY, create=False) as c:
            views = c.reveal_many(batch, tenant="firm-a", principal="u-9", roles=["accountant"], purpose="payments")
        return [
            v[p].state
            for v in views
            for p in ("id_documents[0].number", "bank_accounts[0].account_number")
        ]

    first = harvest(envelopes[:60])
    assert first.count("revealed") == 120
    second = harvest(envelopes[60:])
    assert second.count("revealed") == 80 and second.count("denied") == 100


def test_bad_input_is_a_typed_error(store: coffer.Coffer) -> None:
    deep: Dict[str, Any] = {}
    cur = deep
    for _ in range(10_000):
        cur["a"] = {}
        cur = cur["a"]
    sealed = store.seal(RECORD, actor="import")
    with pytest.raises(coffer.MalformedError, match="access"):
        store.reveal(sealed, tenant="firm-a", principal="u-1", roles=["clerk"], purpose="bookkeeping",
                     context=deep)
    with pytest.raises(coffer.MalformedError):
        store.search("phones[]", "13800000000", tenant="firm-a", principal="u-1", roles=["clerk"],
                     purpose="bookkeeping", attributes=deep)
    with pytest.raises(coffer.LimitExceededError):
        store.seal(deep, actor="import")
    # Names that land in the audit trail: not empty, at most 256 bytes.
    with pytest.raises(coffer.InvalidArgumentError, match="actor"):
        store.seal(dict(RECORD, id="c-9"), actor="")
    with pytest.raises(coffer.LimitExceededError, match="actor"):
        store.seal(dict(RECORD, id="c-9"), actor="x" * (10 << 20))
    with pytest.raises(coffer.LimitExceededError, match="search value"):
        store.search("phones[]", "1" * (10 << 20), tenant="firm-a", principal="u-1", roles=["clerk"],
                     purpose="bookkeeping")
    with pytest.raises(coffer.InvalidArgumentError):
        store.search("phones[]", "13800000000", tenant="", principal="u-1", roles=["clerk"],
                     purpose="bookkeeping")
    assert store.audit.verify()["intact"]


def test_search_is_a_decided_rate_limited_access(store: coffer.Coffer) -> None:
    sealed = store.seal(RECORD, actor="import")
    clerk: Dict[str, Any] = dict(tenant="firm-a", principal="u-2", roles=["clerk"], purpose="bookkeeping")
    answer = store.search("phones[]", str(RECORD["phones"][0]), **clerk)
    assert answer.tokens[0][0].token == sealed.index["phones[0]"][str(answer.tokens[0][0].epoch)]
    assert answer.audit_seq > 0 and answer.withheld_subjects == []
    with pytest.raises(coffer.AccessDeniedError):
        store.search("id_documents[].number", "110101198001010037", tenant="firm-a", principal="m-1",
                     roles=["marketing"], purpose="marketing")
    # Guessing a masked phone's hidden digits: refused past the policy's 300 searches an hour.
    guesses = [f"139{n:04}5678" for n in range(299)]
    store.search_many("phones[]", guesses, **clerk)
    with pytest.raises(coffer.RateLimitedError):
        store.search_many("phones[]", ["13900005678"] * 2, **clerk)
    kinds = [e["kind"] for e in store.audit.export()]
    assert kinds.count("search") == 4 and kinds.count("rate_limit.exceeded") == 1
    trail = json.dumps(store.audit.export())
    assert "13900005678" not in trail and "13912345678" not in trail


def _marketing_phone(c: coffer.Coffer, sealed: coffer.SealedRecord) -> str:
    view = c.reveal(sealed, tenant="firm-a", principal="m-1", roles=["marketing"], purpose="marketing")
    return view["phones[0]"].state


def test_restore_drill_keeps_destroyed_keys_destroyed(tmp_path: pathlib.Path) -> None:
    """Issue 16: back up, seal more, erase, retire the old KEK, lose the store, restore with the
    certificate kept since. The erased contact stays shredded, the rest of the backup opens."""
    key = coffer.generate_master_key()
    db = tmp_path / "c.db"
    with coffer.Coffer.open(db, master_key=key, policy=POLICY, retention=RETENTION) as c:
        erased = c.seal(dict(RECORD, id="c-1", subject="s-1"), actor="import")
        kept = c.seal(dict(RECORD, id="c-2", subject="s-2"), actor="import")
        manifest = c.backup(tmp_path / "nightly.db", actor="ops")
        assert manifest["format"] == "coffer-backup/1" and manifest["live_data_keys"] > 0
        assert (tmp_path / "nightly.db.manifest.json").stat().st_mode & 0o777 == 0o600
        assert (tmp_path / "nightly.db").stat().st_mode & 0o777 == 0o600
        with pytest.raises(coffer.InvalidArgumentError):
            c.backup(tmp_path / "nightly.db", actor="ops")
        after = c.seal(dict(RECORD, id="c-3", subject="s-3"), actor="import")
        answer = c.erase("firm-a", "s-1", actor="dpo")
        assert answer["backup_exposure"]["kek_versions"] == [1]
        assert answer["backup_exposure"]["until"]
        certificate = json.dumps(answer["certificate"])
        assert c.rotate_kek(actor="ops", retire=True) == 2
        assert c.retire_keks(actor="ops") == []
    for suffix in ("", "-wal", "-shm"):
        pathlib.Path(f"{db}{suffix}").unlink(missing_ok=True)

    with pytest.raises(coffer.InvalidArgumentError, match="certificates"):
        coffer.restore(tmp_path / "nightly.db", db, master_key=key, actor="ops")
    assert not db.exists()
    with pytest.raises(coffer.WrongMasterKeyError):
        coffer.restore(tmp_path / "nightly.db", db, master_key=coffer.generate_master_key(),
                       actor="ops", certificates=[certificate])
    with pytest.raises(coffer.MalformedError):
        coffer.restore(tmp_path / "nightly.db", db, master_key=key, actor="ops", certificates=["{"])
    with pytest.raises(TypeError):
        coffer.restore(tmp_path / "nightly.db", db, master_key=key, actor="ops", certificates=certificate)
    report = coffer.restore(tmp_path / "nightly.db", db, master_key=key, actor="ops",
                            certificates=[certificate])
    assert report["sources"] == ["certificates"] and report["reapplied"] >= 1
    with coffer.Coffer.open(db, master_key=key, policy=POLICY, retention=RETENTION, create=False) as r:
        assert _marketing_phone(r, erased) == "shredded"
        assert _marketing_phone(r, kept) == "revealed"
        assert _marketing_phone(r, after) == "shredded"  # its key was made after the backup
        assert r.audit.verify()["intact"]


def test_envelope_vectors_open_with_an_independent_implementation() -> None:
    """The vectors' description is enough to open every sealed field and (versions 2 and 3)
    every sealed masked form with a general-purpose library, without Coffer."""
    import base64
    import struct

    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.ciphers.aead import AESGCM
    from cryptography.hazmat.primitives.kdf.hkdf import HKDF

    def lp(*parts: bytes) -> bytes:
        return b"".join(struct.pack(">I", len(p)) + p for p in parts)

    def b64(text: str) -> bytes:
        return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))

    vectors = json.loads((ROOT / "tests" / "vectors" / "envelopes.json").read_text(encoding="utf-8"))
    versions = set()
    for case in vectors["cases"]:
        env = json.loads(case["envelope"])
        version = env["coffer"]
        versions.add(version)
        keys = {(k["category"], k["version"]): bytes.fromhex(k["key"]) for k in case["data_keys"]}
        salt = b64(env["salt"])
        where = (env["tenant"].encode(), env["record"].encode())

        def key(label: bytes, category: str) -> AESGCM:
            ikm = keys[(category, env["keys"][category])]
            if version >= 3:
                # One key per data key, for every envelope under it.
                hkdf = HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=lp(label))
            else:
                info = lp(label, *where, category.encode())
                hkdf = HKDF(algorithm=hashes.SHA256(), length=32, salt=salt, info=info)
            return AESGCM(hkdf.derive(ikm))

        def nonce(n: int) -> bytes:
            if version >= 3:
                # The seal's IV (the salt's first 12 bytes) with the counter XORed in.
                iv = salt[:12]
                return iv[:8] + bytes(a ^ b for a, b in zip(iv[8:], struct.pack(">I", n)))
            return bytes(8) + struct.pack(">I", n)

        field_label, mask_label = (
            (b"coffer/v3/field", b"coffer/v3/mask") if version >= 3 else (b"coffer/v1/record", b"coffer/v2/mask")
        )

        def aad(label: bytes, path: str) -> bytes:
            return lp(label, *where, path.encode()) if version >= 3 else lp(label, path.encode())

        for path, f in env["fields"].items():
            plain = key(field_label, f["c"]).decrypt(
                nonce(f["n"]), b64(f["ct"]), aad(b"coffer/v3/field" if version >= 3 else b"coffer/v1/field", path))
            assert plain.decode() == case["plaintexts"][path]
        if version >= 2:
            assert env["masked"]
            for path, f in env["masked"].items():
                plain = key(mask_label, f["c"]).decrypt(nonce(f["n"]), b64(f["ct"]), aad(mask_label, path))
                assert plain.decode() == case["plaintexts"][f"masked:{path}"]
    assert versions == {1, 2, 3}


def test_redaction_removes_what_a_destroyed_category_left(store: coffer.Coffer) -> None:
    sealed = store.seal(RECORD, actor="import")
    assert sealed.version == 3 and sealed.masked == {} and "139****5678" not in sealed.to_json()
    token = next(iter(sealed.index["phones[0]"].values()))
    # Nothing to do while every key lives.
    [r] = store.redact([sealed], actor="ops")
    assert not r.changed and r.clear_index == [] and r.sealed == sealed
    store.erase("firm-a", "s-1", actor="dpo")
    [r] = store.redact([sealed], actor="ops")
    assert r.changed and r.shredded_categories == ["contact"]
    assert r.clear_index == ["phones[0]"]
    assert token not in r.sealed.to_json() and r.sealed.shredded == {"phones[0]": "contact"}
    view = store.reveal(r.sealed, tenant="firm-a", principal="u-2", roles=["clerk"], purpose="bookkeeping")
    assert view["phones[0]"].state == "shredded"
    # A changed envelope is refused, nothing redacted.
    bad = coffer.SealedRecord.from_json(sealed.to_json().replace('"c-1"', '"c-9"'))
    with pytest.raises(coffer.IntegrityError):
        store.redact([bad], actor="ops")


def test_a_panic_in_coffer_is_an_internal_error() -> None:
    """A panic inside the native module reaches Python as coffer.InternalError, an Exception
    (PyO3 alone would raise PanicException, a BaseException that `except Exception` misses)."""
    with pytest.raises(coffer.InternalError) as caught:
        coffer._native._test_panic()
    assert isinstance(caught.value, Exception)
    assert "deliberate" not in str(caught.value)
