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
