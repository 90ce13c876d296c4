"""Quick start from Python: validate, normalise and mask a customer record.

Run (after the test command has built the module): .venv/bin/python examples/python/quickstart.py
"""

from typing import Any, Dict

import coffer

record: Dict[str, Any] = {
    "id": "c-1",
    "tenant": "acme",
    "kind": "individual",
    "name": "张三",
    "id_documents": [{"type": "cn_resident_id", "number": "110101200001010000"}],
    "phones": ["+86 138 0000 0000"],
}

report = coffer.validate(record)
for issue in report["issues"]:
    print(issue["path"], issue["code"])  # id_documents[0].number resident_id.checksum

try:
    coffer.check(record)
except coffer.ValidationError as err:  # also a ValueError
    print("refused:", err.code, len(err.report["issues"]), "issue(s)")

record["id_documents"][0]["number"] = "110101200001010002"
clean = coffer.check(record)
print(clean["phones"][0], "->", coffer.mask(clean["phones"][0], "phone"))  # 13800000000 -> 138****0000
