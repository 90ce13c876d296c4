"""The foundation from Python: errors, validation, normalisation, masking, bad input, threads."""

from __future__ import annotations

import builtins
import collections
import datetime
import json
import pathlib
import random
import threading
from typing import Any, Dict, List

import pytest

import coffer

VECTORS = pathlib.Path(__file__).resolve().parents[3] / "tests" / "vectors"
TODAY = datetime.date(2026, 11, 27)


def good_record(**extra: Any) -> Dict[str, Any]:
    record: Dict[str, Any] = {
        "id": "c-1",
        "tenant": "acme",
        "kind": "individual",
        "name": "张三",
        "id_documents": [{"type": "cn_resident_id", "number": "110101200001010002"}],
        "phones": ["+86 138-0000-0000"],
    }
    record.update(extra)
    return record


def test_error_table_matches_vectors() -> None:
    table = json.loads((VECTORS / "errors.json").read_text(encoding="utf-8"))
    kinds = table["kinds"]
    assert len(kinds) == len(coffer.error_kinds())
    for entry, native in zip(kinds, coffer.error_kinds()):
        assert native["code"] == entry["code"]
        assert native["name"] == entry["name"]
        assert native["description"] == entry["status_str"]
        cls = getattr(coffer, entry["python"])
        assert native["exception"] is cls
        assert cls.code == entry["code"]
        assert cls.kind == entry["name"]
        assert issubclass(cls, coffer.CofferError)
        if entry["python_builtin"]:
            assert issubclass(cls, getattr(builtins, entry["python_builtin"]))
    assert coffer.class_for_code(999) is coffer.CofferError


def test_validation_vectors() -> None:
    data = json.loads((VECTORS / "validation.json").read_text(encoding="utf-8"))
    today = datetime.date.fromisoformat(data["today"])
    assert len(data["cases"]) >= 30
    for case in data["cases"]:
        report = coffer.validate(case["record"], today=today)
        got = sorted((i["path"], i["code"]) for i in report["issues"])
        want = sorted((p, c) for p, c in case["issues"])
        assert got == want, case["name"]
        assert report["valid"] is case["valid"], case["name"]


def test_masking_vectors() -> None:
    data = json.loads((VECTORS / "validation.json").read_text(encoding="utf-8"))
    for case in data["masking"]:
        assert coffer.mask(case["value"], case["form"], case["profile"]) == case["expected"], case


def test_records_as_dict_str_or_bytes() -> None:
    as_dict = coffer.validate(good_record(), today=TODAY)
    as_str = coffer.validate(json.dumps(good_record()), today=TODAY)
    as_bytes = coffer.validate(json.dumps(good_record()).encode(), today=TODAY)
    assert as_dict == as_str == as_bytes == {"valid": True, "issues": []}


def test_normalize_and_check() -> None:
    normalised = coffer.normalize(good_record(emails=["Zhang@EXAMPLE.com"]))
    assert normalised["phones"] == ["13800000000"]
    assert normalised["emails"] == ["Zhang@example.com"]
    assert coffer.normalize(normalised) == normalised
    checked = coffer.check(good_record(), today=TODAY)
    assert checked["id_documents"][0]["number"] == "110101200001010002"


def test_check_raises_validation_error_with_report() -> None:
    bad = good_record(id_documents=[{"type": "cn_resident_id", "number": "110101200001010000"}])
    with pytest.raises(coffer.ValidationError) as info:
        coffer.check(bad, today=TODAY)
    err = info.value
    assert isinstance(err, ValueError)
    assert err.code == 5
    assert err.report["valid"] is False
    assert {"path": "id_documents[0].number", "code": "resident_id.checksum"}.items() <= err.report["issues"][0].items()
    assert "110101200001010000" not in str(err)
    assert "110101200001010000" not in repr(err)


def test_custom_schema() -> None:
    with pytest.raises(coffer.SchemaError) as info:
        coffer.Schema.from_toml('version = 1\nname = "x"\n[fields.name]\nclass = "secret"\nprotection = "clear"\nmask = "name"\ncategory = "c"\n')
    assert "line 4" in str(info.value)
    with pytest.raises(coffer.MalformedError):
        coffer.Schema.from_toml("[fields\n")
    schema = coffer.Schema.builtin()
    assert schema.name == "coffer.customer"
    assert coffer.validate(good_record(), today=TODAY, schema=schema)["valid"]


@pytest.mark.parametrize(
    "record, exc",
    [
        ({"id": "1", "tenant": "t", "kind": "company", "nmae": "x"}, coffer.MalformedError),
        ({1: "x"}, TypeError),
        ({"id": "1", "tenant": "t", "kind": "company", "custom": {"k": object()}}, TypeError),
        ({"id": "1", "tenant": "t", "kind": "company", "name": float("nan")}, TypeError),
        ("{not json", coffer.MalformedError),
        (b'{"id":"\xff"}', coffer.MalformedError),
        (12345, TypeError),
        ({"id": "1", "tenant": "t", "kind": "individual", "phones": ["1"] * 33}, coffer.LimitExceededError),
    ],
)
def test_bad_input_raises_the_right_class(record: Any, exc: type) -> None:
    with pytest.raises(exc):
        coffer.validate(record, today=TODAY)


def test_deep_nesting_is_refused() -> None:
    deep: Any = "x"
    for _ in range(100):
        deep = [deep]
    with pytest.raises(coffer.LimitExceededError):
        coffer.validate({"id": "1", "tenant": "t", "kind": "company", "custom": {"k": deep}}, today=TODAY)


def test_bad_arguments() -> None:
    with pytest.raises(coffer.InvalidArgumentError):
        coffer.validate(good_record(), today="2026-11-27")  # type: ignore[arg-type]
    with pytest.raises(coffer.InvalidArgumentError):
        coffer.mask("x", "nmae")
    with pytest.raises(coffer.InvalidArgumentError):
        coffer.mask("x", "name", "root")
    with pytest.raises(coffer.UnsupportedError):
        coffer.mask("x", "keyed_hash")
    assert coffer.mask("13800000000", "withhold") is None


def test_no_plaintext_in_exception_messages() -> None:
    planted = ["13912345678", "SENTINELNAME", "110101200001010000"]
    attempts: List[Any] = [
        {"id": "c", "tenant": "t", "kind": "individual", "phones": "13912345678"},
        {"id": "c", "tenant": "t", "kind": "SENTINELNAME"},
        {"id": "c", "tenant": "t", "kind": "individual", "name": 13912345678},
        '{"id":"c","tenant":"t","kind":"individual","name":"SENTINELNAME" ',
        good_record(name="SENTINELNAME", id_documents=[{"type": "cn_resident_id", "number": "110101200001010000"}]),
    ]
    for record in attempts:
        with pytest.raises(coffer.CofferError) as info:
            coffer.check(record, today=TODAY)
        text = str(info.value) + repr(info.value) + json.dumps(getattr(info.value, "report", {}), ensure_ascii=False)
        for p in planted:
            assert p not in text


def test_eight_threads_share_a_schema() -> None:
    schema = coffer.Schema.builtin()
    errors: List[str] = []

    def work(n: int) -> None:
        for i in range(300):
            number = "110101200001010002" if (i + n) % 2 else "110101200001010000"
            report = coffer.validate(good_record(id_documents=[{"type": "cn_resident_id", "number": number}]), today=TODAY, schema=schema)
            if report["valid"] != ((i + n) % 2 == 1):
                errors.append(f"thread {n} iteration {i}")

    threads = [threading.Thread(target=work, args=(n,)) for n in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []


def test_version() -> None:
    assert coffer.__version__.count(".") == 2


def test_a_dict_reads_as_its_json_text_does() -> None:
    # Quotes, backslashes, control characters, a line separator and characters beyond the BMP:
    # the dict is written as JSON text for the record's parser.
    tricky = 'a "quoted" \\ back\tslash\n\u0001 \u2028 \U0001f600 張三'
    record = good_record(custom={"note": tricky, "other_1": "x"}, subject=None)
    as_dict = coffer.normalize(record)
    assert as_dict == coffer.normalize(json.dumps(record, ensure_ascii=False))
    assert as_dict == coffer.normalize(json.dumps(record).encode())
    # (Whitespace in a custom value is folded as normalising does.)
    assert as_dict["custom"]["note"].startswith('a "quoted" \\ back')
    assert as_dict["custom"]["note"].endswith("\x01 \U0001f600 張三")
    assert coffer.normalize(tuple_lists(record)) == as_dict
    # A key with a quote in it (no field has one): the same error, at the same column, as the
    # compact JSON text of the same dict.
    bad = good_record(**{'na"me\n': "x"})
    with pytest.raises(coffer.MalformedError) as from_dict:
        coffer.normalize(bad)
    with pytest.raises(coffer.MalformedError) as from_text:
        coffer.normalize(json.dumps(bad, ensure_ascii=False, separators=(",", ":")))
    assert str(from_dict.value) == str(from_text.value)


def test_a_dict_is_read_as_its_json_text_in_every_case() -> None:
    # A dict is read straight into a record when it is one (issue 18), and through its JSON text
    # otherwise. Either way it must fare exactly as its compact JSON text does: the same record,
    # or the same error, at the same place. Random records, mostly near-valid, attack that.
    rng = random.Random(18)
    strings = ["x", "张三", "a\"b", "back\\slash", "tab\there", "\u0001", "13800000000", "", "individual", "company", "card", "cn_resident_id", "CN"]
    def text() -> Any:
        return rng.choice(strings)
    def odd() -> Any:
        return rng.choice([None, 1, -7, True, False, [], {}, ["x"], {"k": "v"}, 2**40])
    def value(make: Any) -> Any:
        return make() if rng.random() < 0.97 else odd()
    def items(make: Any) -> Any:
        # Now and then past the limit of 32 items.
        out = [value(make) for _ in range(rng.choice([0, 1, 2, 3] * 4 + [33]))]
        return tuple(out) if rng.random() < 0.2 else out
    def document() -> Any:
        doc = {"type": rng.choice(["cn_resident_id", "cn_resident_id_15", "passport", "uscc"] * 3 + ["nope"]), "number": text()}
        if rng.random() < 0.5:
            doc["country"] = rng.choice(["CN", None, 5])
        return doc
    def account() -> Any:
        acc = {"account_type": rng.choice(["card", "settlement", "iban"] * 3 + ["current"]), "account_number": text()}
        for k in ("bank_name", "branch"):
            if rng.random() < 0.5:
                acc[k] = rng.choice([text(), None])
        return acc
    fields = {
        "subject": lambda: value(lambda: rng.choice([text(), None])),
        "name": lambda: value(text),
        "id_documents": lambda: items(document),
        "phones": lambda: items(text),
        "emails": lambda: items(text),
        "addresses": lambda: items(text),
        "bank_accounts": lambda: items(account),
        "custom": lambda: {rng.choice(["k", "vip_1"] * 6 + ["bad key", ""]): value(text) for _ in range(rng.randrange(3))},
        "kind": lambda: value(lambda: rng.choice(["individual", "company"] * 6 + ["robot", {"company": None}])),
        "nmae": text,
    }
    outcomes: collections.Counter[str] = collections.Counter()
    for _ in range(3000):
        record: Dict[str, Any] = {"id": value(text), "tenant": "t", "kind": "individual"}
        for key in rng.sample(sorted(fields), rng.randrange(len(fields))):
            if key != "nmae" or rng.random() < 0.1:
                record[key] = fields[key]()
        if rng.random() < 0.05:
            del record[rng.choice(sorted(record))]
        as_text = json.dumps(record, ensure_ascii=False, separators=(",", ":"))
        results: List[Any] = []
        for given in (record, as_text):
            try:
                results.append(coffer.normalize(given))
            except coffer.CofferError as e:
                results.append((type(e), str(e)))
        assert results[0] == results[1], as_text
        outcomes[results[0][0].__name__ if isinstance(results[0], tuple) else "record"] += 1
    # Records were read, and each kind of refusal met, many times.
    assert min(outcomes[k] for k in ("record", "MalformedError", "LimitExceededError")) > 20, outcomes


def test_records_the_dict_reader_leaves_to_the_json_path() -> None:
    # An enum's name given as a map, as serde reads JSON: accepted, as from text.
    assert coffer.normalize(good_record(kind={"company": None}))["kind"] == "company"
    # A lone surrogate: Python's own error, as before.
    with pytest.raises(UnicodeEncodeError):
        coffer.normalize(good_record(name="\ud800"))
    # Values within every limit whose JSON text passes the record's only by their escapes
    # (each control character is six bytes there): refused at the limit, as that text is.
    escaped = good_record(custom={f"k{i}": "\x01" * 4000 for i in range(64)})
    for given in (escaped, json.dumps(escaped)):
        with pytest.raises(coffer.LimitExceededError, match="customer record JSON"):
            coffer.normalize(given)
    plain = good_record(custom={f"k{i}": "x" * 4000 for i in range(64)})
    assert len(coffer.normalize(plain)["custom"]) == 64


def tuple_lists(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: tuple_lists(v) for k, v in value.items()}
    if isinstance(value, list):
        return tuple(tuple_lists(v) for v in value)
    return value


def test_type_errors_say_where_the_value_is() -> None:
    with pytest.raises(TypeError, match=r'record\["custom"\]\["k"\]: values must be'):
        coffer.validate({"id": "1", "tenant": "t", "kind": "company", "custom": {"k": object()}}, today=TODAY)
    with pytest.raises(TypeError, match=r'record\["phones"\]\[1\]: values must be'):
        coffer.validate(good_record(phones=["1", {2}]), today=TODAY)
    with pytest.raises(TypeError, match=r'record\["custom"\]: dictionary keys must be str'):
        coffer.validate(good_record(custom={1: "x"}), today=TODAY)
    with pytest.raises(TypeError, match=r'record\["custom"\]\["n"\]: integer out of range'):
        coffer.validate(good_record(custom={"n": 2**70}), today=TODAY)


def test_an_oversized_dict_is_refused_at_the_size_limit() -> None:
    with pytest.raises(coffer.LimitExceededError, match="customer record JSON"):
        coffer.validate(good_record(name="x" * (2 * 1024 * 1024)), today=TODAY)
    with pytest.raises(coffer.LimitExceededError, match="customer record JSON"):
        coffer.validate(good_record(custom={f"k{i}": "x" * 1000 for i in range(2000)}), today=TODAY)


def test_a_record_changed_while_it_is_read_is_an_error_not_a_panic() -> None:
    # A list subclass whose __iter__ changes the record being read: the record's error (a
    # CofferError), where PyO3's iterator would otherwise raise PanicException.
    record = good_record()

    class Sneaky(list):  # type: ignore[type-arg]
        def __iter__(self) -> Any:
            record["emails"] = []
            return super().__iter__()

    record["phones"] = Sneaky(["13800000000"])
    with pytest.raises(coffer.InvalidArgumentError, match="changed while it was being read"):
        coffer.validate(record, today=TODAY)
