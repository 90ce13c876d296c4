"""Seal and reveal 100,000 typical records from Python with ``seal_many`` / ``reveal_many``, and
in the same run what a Python user would otherwise write: the same six sensitive fields
encrypted one by one with ``cryptography``'s AESGCM (a random nonce each, the field path as
associated data) and the three indexed fields hashed with ``hmac``.

Coffer does more in the same time: it normalises and validates every record, checks the policy
for every field, and commits an audit entry per record. Every record is a new customer, whose
three data keys are made, wrapped and stored as it is sealed (the baseline keeps no keys);
"cached reseal" seals the same records again, as an ERP saves edited customers, whose keys
exist.

Run on demand, against a release build of the module:

    .venv/bin/pip install -r benches/python/requirements.txt
    (cd bindings/python && ../../.venv/bin/maturin develop --release)
    .venv/bin/python benches/python/bench_vault.py [records]

Target (issue 7): Coffer at least 3 times faster than the baseline.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import pathlib
import statistics
import sys
import tempfile
import time
from typing import Any, Callable, Dict, List, Tuple

from cryptography.hazmat.primitives.ciphers.aead import AESGCM

import coffer

ROOT = pathlib.Path(__file__).resolve().parents[2]
POLICY = (ROOT / "examples" / "policies" / "accounting-firm.toml").read_text(encoding="utf-8")
BATCH = 1000
RUNS = 3


def typical(i: int) -> Dict[str, Any]:
    return {
        "id": f"c-{i}", "tenant": "firm-a", "subject": f"s-{i}", "kind": "individual",
        "name": "张三",
        "id_documents": [{"type": "cn_resident_id", "number": "11010119800101007X", "country": "CN"}],
        "phones": ["13800000000"], "emails": ["zhang.san@example.com"],
        "addresses": ["北京市东城区示例街道1号"],
        "bank_accounts": [{"bank_name": "示例银行", "account_type": "card", "account_number": "6200000000000005"}],
    }


SENSITIVE: List[Tuple[str, Callable[[Dict[str, Any]], str]]] = [
    ("name", lambda r: r["name"]),
    ("id_documents[0].number", lambda r: r["id_documents"][0]["number"]),
    ("phones[0]", lambda r: r["phones"][0]),
    ("emails[0]", lambda r: r["emails"][0]),
    ("addresses[0]", lambda r: r["addresses"][0]),
    ("bank_accounts[0].account_number", lambda r: r["bank_accounts"][0]["account_number"]),
]
INDEXED = ["id_documents[0].number", "phones[0]", "emails[0]"]


def baseline_seal(records: List[Dict[str, Any]], aead: AESGCM, index_key: bytes) -> List[Dict[str, Any]]:
    out = []
    for r in records:
        fields = {}
        index = {}
        for path, get in SENSITIVE:
            value = get(r).encode("utf-8")
            nonce = os.urandom(12)
            fields[path] = nonce + aead.encrypt(nonce, value, path.encode())
            if path in INDEXED:
                index[path] = hmac.new(index_key, value, hashlib.sha256).hexdigest()[:16]
        out.append({"id": r["id"], "fields": fields, "index": index})
    return out


def baseline_reveal(sealed: List[Dict[str, Any]], aead: AESGCM) -> int:
    n = 0
    for s in sealed:
        for path, blob in s["fields"].items():
            aead.decrypt(blob[:12], blob[12:], path.encode())
            n += 1
    return n


def timed(f: Callable[[], Any]) -> Tuple[float, Any]:
    start = time.perf_counter()
    result = f()
    return time.perf_counter() - start, result


def main() -> None:
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 100_000
    records = [typical(i) for i in range(n)]
    batches = [records[i:i + BATCH] for i in range(0, n, BATCH)]
    keys = (
        "coffer seal", "coffer reveal", "cached seal", "cached reveal", "cached reseal", "baseline seal",
        "baseline reveal",
    )
    results: Dict[str, List[float]] = {k: [] for k in keys}
    # "coffer": the default key cache (10,000 data keys), so revealing 100,000 customers reads
    # each customer's keys back from the store; "cached": a cache that holds every key of the
    # run (three per customer), as a bulk job would configure it.
    configs = [("coffer", None), ("cached", 3 * n + 1000)]
    for run in range(RUNS):
        for label, cache in configs:
            with tempfile.TemporaryDirectory() as tmp:
                with coffer.Coffer.open(pathlib.Path(tmp) / "bench.db", master_key=coffer.generate_master_key(),
                                        policy=POLICY, data_key_cache=cache) as c:
                    def seal_all() -> List[coffer.SealedRecord]:
                        sealed: List[coffer.SealedRecord] = []
                        for b in batches:
                            for s in c.seal_many(b, actor="bench"):
                                assert isinstance(s, coffer.SealedRecord)
                                sealed.append(s)
                        return sealed

                    t, sealed = timed(seal_all)
                    results[f"{label} seal"].append(t)

                    def reveal_all() -> int:
                        count = 0
                        for i in range(0, n, BATCH):
                            views = c.reveal_many(sealed[i:i + BATCH], tenant="firm-a", principal="a-1",
                                                  roles=["auditor"], purpose="statutory_audit",
                                                  context={"ticket": "AUD-1"})
                            count += sum(1 for v in views if v.value("name") == "张三")
                        return count

                    t, count = timed(reveal_all)
                    assert count == n
                    results[f"{label} reveal"].append(t)
                    if label == "cached":
                        # The same customers sealed again (an ERP saving edited records): their
                        # data keys exist, so none is made.
                        t, _ = timed(seal_all)
                        results["cached reseal"].append(t)
        aead = AESGCM(AESGCM.generate_key(bit_length=256))
        index_key = os.urandom(32)
        t, base = timed(lambda: baseline_seal(records, aead, index_key))
        results["baseline seal"].append(t)
        t, fields = timed(lambda: baseline_reveal(base, aead))
        assert fields == 6 * n
        results["baseline reveal"].append(t)
        print(f"run {run + 1}: " + ", ".join(f"{k} {v[-1]:.2f} s" for k, v in results.items()), flush=True)
    med = {k: statistics.median(v) for k, v in results.items()}
    print(f"\n{n} records, median of {RUNS} runs")
    for k, v in med.items():
        print(f"  {k:16} {v:7.2f} s  {n / v:>10,.0f} records/s")
    for label, _ in configs:
        print(f"  {label} seal:   {med['baseline seal'] / med[label + ' seal']:.2f}x the baseline's speed")
        print(f"  {label} reveal: {med['baseline reveal'] / med[label + ' reveal']:.2f}x the baseline's speed")
    print(f"  cached reseal: {med['baseline seal'] / med['cached reseal']:.2f}x the baseline's speed")


if __name__ == "__main__":
    main()
