"""Compliance reports from Python: a subject's report, incident scoping, access review, the
compliance check, their renderings, who may run them, and a tampered trail."""

from __future__ import annotations

import datetime
import json
import pathlib
import sqlite3
from typing import Any, Dict, Iterator, Tuple, Union

import pytest

import coffer

from conftest import POSTGRES, store_location

ROOT = pathlib.Path(__file__).resolve().parents[3]
POLICY = (ROOT / "examples" / "policies" / "accounting-firm.toml").read_text(encoding="utf-8")
RETENTION = (ROOT / "examples" / "policies" / "retention.toml").read_text(encoding="utf-8")

OFFICER: Dict[str, Any] = {
    "tenant": "firm-a",
    "principal": "dpo-1",
    "roles": ["privacy_officer"],
    "purpose": "data_protection",
    "context": {"ticket": "DSAR-7"},
}


def record(i: int) -> Dict[str, Any]:
    return {
        "id": f"c-{i}",
        "tenant": "firm-a",
        "subject": f"s-{i}",
        "kind": "individual",
        "name": "张三",
        "id_documents": [{"type": "cn_resident_id", "number": "110101198001010037"}],
        "phones": ["13912345678"],
        "bank_accounts": [{"account_type": "card", "account_number": "6222021001123456789"}],
    }


@pytest.fixture()
def store(tmp_path: pathlib.Path) -> Iterator[Tuple[coffer.Coffer, list[coffer.SealedRecord], Union[str, pathlib.Path]]]:
    key = coffer.generate_master_key()
    db = store_location(tmp_path)
    with coffer.Coffer.open(db, master_key=key, policy=POLICY, retention=RETENTION) as c:
        sealed = c.seal_many([record(i) for i in range(1, 4)], actor="import")
        envelopes = [s for s in sealed if isinstance(s, coffer.SealedRecord)]
        c.reveal(envelopes[0], tenant="firm-a", principal="u-1", roles=["accountant"], purpose="payments",
                 context={"client": "erp-web"})
        c.reveal(envelopes[1], tenant="firm-a", principal="u-2", roles=["clerk"], purpose="bookkeeping")
        yield c, envelopes, db


def test_subject_report_shows_values_only_to_the_officer_and_never_in_repr(store: Any) -> None:
    c, envelopes, _ = store
    report = c.subject_report("s-1", sealed=envelopes[:1], **OFFICER)
    assert report.kind == "subject" and report.trail_intact
    assert report["records"] == ["c-1"]
    fields = {f["path"]: f for f in report["fields"]}
    assert fields["bank_accounts[0].account_number"]["value"] == "6222021001123456789"
    assert fields["phones[0]"]["category"] == "contact"
    assert [(a["actor"], a["purpose"]) for a in report["accesses"]] == [("u-1", "payments")]
    assert "6222021001123456789" not in repr(report) and "张三" not in repr(report)
    assert "6222021001123456789" in report.to_markdown()
    html = report.to_html()
    assert 'id="retention-timeline"' in html and "<script" not in html
    # Same JSON, same rendering, whichever way it is asked for.
    assert coffer.render_report(report.to_json(), "html") == html
    assert coffer.render_report(report, "markdown") == report.to_markdown()
    # Unknown subject: an empty, well-formed answer.
    empty = c.subject_report("nobody", **OFFICER)
    assert empty["fields"] == [] and empty["accesses"] == [] and empty["keys"] == []


def test_incident_scope_by_client_and_fields(store: Any) -> None:
    c, _, _ = store
    r = c.affected(client="erp-web", fields=["class:sensitive"], **OFFICER)
    assert [(s["subject"], s["reveals"]) for s in r["subjects"]] == [("s-1", 1)]
    assert r["fields"] == {"bank_accounts[].account_number": 1, "id_documents[].number": 1}
    # The clerk saw s-2's name in clear: personal fields by default.
    r = c.affected(by="u-2", **OFFICER)
    assert [s["subject"] for s in r["subjects"]] == ["s-2"]
    # A window in the future: empty, with a note; a backwards one is an error.
    later = datetime.date.today() + datetime.timedelta(days=400)
    r = c.affected(start=later, end=later + datetime.timedelta(days=1), **OFFICER)
    assert r["subjects"] == [] and any("future" in n for n in r["notes"])
    with pytest.raises(coffer.InvalidArgumentError) as e:
        c.affected(start=later, end=datetime.date(2020, 1, 1), **OFFICER)
    assert "from" in str(e.value)
    with pytest.raises(coffer.InvalidArgumentError):
        c.affected(fields=["phones[0]"], **OFFICER)
    with pytest.raises(TypeError):
        c.affected(fields="phones[]", **OFFICER)
    with pytest.raises(TypeError):
        c.affected(start="2026-01-01", **OFFICER)


def test_review_and_check(store: Any) -> None:
    c, _, _ = store
    r = c.access_review(datetime.date(2000, 1, 1), **OFFICER)
    accountant = next(x for x in r["roles"] if x["role"] == "accountant")
    used = {(g["field"], g["purpose"]): g["used"] for g in accountant["grants"]}
    assert used[("bank_accounts[].account_number", "payments")] == 1
    assert used[("bank_accounts[].account_number", "tax_filing")] == 0
    assert r["unused"] > 0
    check = c.compliance_check(**OFFICER)
    codes = [f["code"] for f in check["findings"]]
    assert "policy.sensitive_without_ticket" in codes and "audit.checkpoint_stale" in codes
    assert all(f["severity"] in ("critical", "high", "medium", "low") for f in check["findings"])
    with pytest.raises(TypeError):
        c.compliance_check(max_key_age_days="1", **OFFICER)
    with pytest.raises(coffer.InvalidArgumentError):
        coffer.render_report(check, "pdf")


def test_only_the_policy_decides_who_may_run_reports(store: Any) -> None:
    c, _, _ = store
    before = c.audit.verify()["entries"]
    with pytest.raises(coffer.AccessDeniedError) as e:
        c.compliance_check(tenant="firm-a", principal="u-2", roles=["clerk"], purpose="bookkeeping")
    assert isinstance(e.value, PermissionError) and "admin" in str(e.value)
    no_ticket = dict(OFFICER, context={})
    with pytest.raises(coffer.AccessDeniedError):
        c.subject_report("s-1", **no_ticket)
    assert c.audit.verify()["entries"] == before


@pytest.mark.skipif(bool(POSTGRES), reason="tampers with the SQLite file directly")
def test_a_tampered_trail_is_refused_unless_accepted(store: Any) -> None:
    c, _, db = store
    conn = sqlite3.connect(db)
    with conn:
        n = conn.execute(
            "UPDATE audit SET entry = replace(entry, '\"u-1\"', '\"u-9\"') "
            "WHERE entry LIKE '%\"kind\":\"reveal\"%\"u-1\"%'"
        ).rowcount
    conn.close()
    assert n == 1
    with pytest.raises(coffer.IntegrityError) as e:
        c.affected(fields=["id_documents[].number"], **OFFICER)
    assert "BROKEN at entry" in str(e.value)
    r = c.affected(fields=["id_documents[].number"], accept_broken_trail=True, **OFFICER)
    assert not r.trail_intact and r["trail"]["problem"] == "changed"
    assert 'class="broken"' in r.to_html()
    check = c.compliance_check(**OFFICER)
    assert check["findings"][0]["code"] == "audit.chain_broken"


def test_bad_report_json_is_a_clear_error() -> None:
    with pytest.raises(coffer.MalformedError):
        coffer.render_report("{", "html")
    with pytest.raises(coffer.MalformedError) as e:
        coffer.render_report(json.dumps({"report": "check"}), "html")
    assert "format" in str(e.value)
    with pytest.raises(TypeError):
        coffer.render_report(3, "html")  # type: ignore[arg-type]
