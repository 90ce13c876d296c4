"""A month-end script: load customers from a CSV file, seal them, look one up by resident ID,
reveal it as an accountant and as a clerk, and print the audit verification.

Run it from the repository root (the test command does):

    python examples/python/month_end.py [store path]

The master key comes from COFFER_MASTER_KEY (64 hexadecimal characters) when it is set;
otherwise a new one is generated for this run.
"""

from __future__ import annotations

import csv
import os
import pathlib
import sys
import tempfile
from typing import Any, Dict, List

import coffer

HERE = pathlib.Path(__file__).resolve().parent
EXAMPLES = HERE.parent
TENANT = "demo-firm"


def record_from_row(row: Dict[str, str]) -> Dict[str, Any]:
    record: Dict[str, Any] = {
        "id": row["id"],
        "tenant": TENANT,
        "subject": row["subject"],
        "kind": row["kind"],
        "name": row["name"],
        "id_documents": [{"type": row["id_type"], "number": row["id_number"]}],
        "phones": [row["phone"]],
    }
    if row["account_type"]:
        record["bank_accounts"] = [
            {"account_type": row["account_type"], "account_number": row["account_number"]}
        ]
    return record


def show(view: coffer.View) -> None:
    for path, field in view.items():
        shown = field.value if field.value is not None else f"({field.reason})"
        print(f"    {path:34} {field.state:9} {shown}")


def main() -> int:
    store = pathlib.Path(sys.argv[1]) if len(sys.argv) > 1 else pathlib.Path(tempfile.mkdtemp()) / "month-end.db"
    if store.exists():
        store.unlink()
    hex_key = os.environ.get("COFFER_MASTER_KEY")
    key = bytes.fromhex(hex_key) if hex_key else coffer.generate_master_key()
    policy = (EXAMPLES / "policies" / "accounting-firm.toml").read_text(encoding="utf-8")
    retention = (EXAMPLES / "policies" / "retention.toml").read_text(encoding="utf-8")

    with coffer.Coffer.open(store, master_key=key, policy=policy, retention=retention) as c:
        # 1. Load and seal the month's customers in one batch (one audit transaction).
        with open(EXAMPLES / "c" / "customers.csv", newline="", encoding="utf-8") as f:
            rows = list(csv.DictReader(f))
        results = c.seal_many([record_from_row(r) for r in rows], actor="month-end")
        table: List[coffer.SealedRecord] = []
        for row, result in zip(rows, results):
            if isinstance(result, coffer.SealedRecord):
                table.append(result)  # the host stores result.to_json() and result.index
            else:
                print(f"  {row['id']} rejected: {result}")  # paths and codes, never values
        print(f"sealed {len(table)} of {len(rows)} customers")

        # 2. Look one up by resident ID through the blind index, typed with spaces.
        tokens = c.search("id_documents[].number", "310104 19751231 0025", tenant=TENANT, principal="accountant-1", roles=["accountant"], purpose="payments").tokens[0]
        found = [
            s for s in table
            if any(s.index.get("id_documents[0].number", {}).get(str(t.epoch)) == t.token for t in tokens)
        ]
        print(f"lookup by resident ID: {[s.record_id for s in found]}")
        if len(found) != 1:
            return 1

        # 3. Reveal it as two roles.
        for role, purpose in (("accountant", "payments"), ("clerk", "bookkeeping")):
            view = c.reveal(found[0], tenant=TENANT, principal=f"user-{role}", roles=[role], purpose=purpose)
            print(f"  {view.record} as {role} ({purpose}):")
            show(view)

        # 4. Verify the audit trail.
        report = c.audit.verify()
        print(f"audit trail: {report['entries']} entries, intact: {report['intact']}")
        return 0 if report["intact"] and len(table) == 5 else 1


if __name__ == "__main__":
    sys.exit(main())
