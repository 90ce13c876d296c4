"""What the tests share: where a test's store lives.

By default a store is an SQLite file in the test's temporary folder. With
``COFFER_TEST_POSTGRES`` set (``scripts/test`` sets it for its PostgreSQL pass) it is a schema of
its own on that PostgreSQL server, named after the folder.
"""

from __future__ import annotations

import hashlib
import os
import pathlib
import re
import subprocess
from typing import Union

POSTGRES = os.environ.get("COFFER_TEST_POSTGRES", "")


def store_location(folder: pathlib.Path, name: str = "c.db") -> Union[str, pathlib.Path]:
    """The store of a test: ``folder/name``, or a fresh PostgreSQL schema."""
    if not POSTGRES:
        return folder / name
    digest = hashlib.sha256(str(folder / name).encode()).hexdigest()[:8]
    stem = re.sub(r"[^a-z0-9]", "_", folder.name.lower())[-40:]
    sep = "&" if "?" in POSTGRES else "?"
    return f"{POSTGRES}{sep}schema=py_{stem}_{digest}"


def store_rows(location: Union[str, pathlib.Path]) -> bytes:
    """Every row of every table of a PostgreSQL store, as text (through ``psql``), for the
    searches that look for values outside ciphertext; empty for an SQLite file, whose bytes the
    caller reads as a file."""
    text = str(location)
    if "?schema=" not in text and "&schema=" not in text:
        return b""
    base, schema = re.split(r"[?&]schema=", text, maxsplit=1)
    tables = subprocess.run(
        ["psql", base, "-At", "-c",
         f"SELECT table_name FROM information_schema.tables WHERE table_schema = '{schema}'"],
        capture_output=True, check=True, timeout=60,
    ).stdout.decode().split()
    assert tables, f"no tables in schema {schema}"
    out = b""
    for table in tables:
        out += subprocess.run(
            ["psql", base, "-At", "-c", f"SELECT t::text FROM {schema}.{table} t"],
            capture_output=True, check=True, timeout=60,
        ).stdout
    return out
