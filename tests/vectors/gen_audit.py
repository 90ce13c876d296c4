# Generates tests/vectors/audit.json (python3 tests/vectors/gen_audit.py > tests/vectors/audit.json):
# batch entries written from the format in docs/FORMAT.md ("Batch entries"), with their
# expansions computed here, independently of the Rust code that the vectors check.
import json
def j(v): return json.dumps(v, ensure_ascii=False, separators=(',', ':'))
ORDER = ["time","kind","actor","tenant","record","subject","purpose","policy_version","fields","rules","detail"]
def canonical(e):
    out = {}
    for k in ORDER:
        if k not in e or e[k] is None: continue
        if k in ("fields","rules","detail") and not e[k]: continue
        v = e[k]
        if isinstance(v, dict): v = dict(sorted(v.items()))
        out[k] = v
    return j(out)
def batch(head, fields, rules, details, records):
    body = '{"fields":[' + ','.join(j(dict(sorted(f.items()))) for f in fields) + '],"rules":[' + ','.join(j(r) for r in rules) + '],"details":[' + ','.join(j(dict(sorted(d.items()))) for d in details) + '],"records":[' + ','.join(j(r) for r in records) + ']}'
    e = dict(head); e["kind"] = head["kind"] + ".batch"; e["detail"] = {"batch": body}
    expanded = []
    for (rec, subj, f, r, d) in records:
        x = dict(head); x["record"] = rec; x["subject"] = subj
        x["fields"] = fields[f]; x["rules"] = rules[r]; x["detail"] = details[d]
        expanded.append(canonical(x))
    return {"entry": canonical(e), "expanded": expanded}
cases = []
seal_fields = [
  {"name":"sealed","phones[0]":"sealed","id_documents[0].type":"clear","id_documents[0].number":"sealed","bank_accounts[0].account_number":"sealed"},
  {"name":"sealed","phones[0]":"sealed"},
]
cases.append(dict(name="seal.batch: two shapes, two key sets, one tenant",
  **batch({"time":"2026-12-05T10:00:00Z","kind":"seal","actor":"import","tenant":"firm-a"},
    seal_fields, [[]], [{"keys":"banking:1,contact:1,identity:1"},{"keys":"contact:1,identity:2"}],
    [["c-1","s-1",0,0,0],["c-2","s-2",1,0,1],["c-3","s-3",0,0,0]])))
cases.append(dict(name="reveal.batch: purpose, policy version, rules and per-record detail",
  **batch({"time":"2026-12-05T10:00:01Z","kind":"reveal","actor":"u-1","tenant":"firm-a","purpose":"payments",
           "policy_version":"9f2c0d5e8a7b6c4d3e2f1a0b9c8d7e6f5a4b3c2d1e0f9a8b7c6d5e4f3a2b1c0d"},
    [{"name":"reveal","phones[0]":"mask:phone-partial:standard","bank_accounts[0].account_number":"deny:no_matching_allow"},{}],
    [["accountant-payments","deny-bank"],[]],
    [{"roles":"accountant","client":"erp-7"},{"roles":"accountant","client":"erp-7","denied":"restricted"}],
    [["c-1","s-1",0,0,0],["c-2","s-2",1,1,1]])))
cases.append(dict(name="key.create.batch: no record ids; a subject with quotes and Chinese",
  **batch({"time":"2026-12-05T10:00:02Z","kind":"key.create","actor":"import","tenant":"事务所-甲"},
    [{}], [[]], [{"keys":"banking:1,contact:1,identity:1"}],
    [[None,"客户-1",0,0,0],[None,"s-\"2\"",0,0,0]])))
doc = {
  "description": "Audit trail batch entries (store schema 5, docs/FORMAT.md 'Batch entries'): each case's `entry` is a stored entry's canonical text; `expanded` the canonical texts of the entries it stands for, in order. Generated independently of the Rust code by tests/vectors/gen_audit.py.",
  "cases": cases,
}
print(json.dumps(doc, ensure_ascii=False, indent=2))
