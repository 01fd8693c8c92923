"""Reading back everything a history file holds, for tests that look for a secret in it."""

from __future__ import annotations

import contextlib
import sqlite3
import zlib
from pathlib import Path


def stored_values(path: Path) -> bytes:
    """Every value of every table of the SQLite file at ``path``, decompressed if compressed."""
    out = []
    conn = sqlite3.connect(path)
    try:
        tables = [r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type='table'")]
        for table in tables:
            for row in conn.execute(f'SELECT * FROM "{table}"'):
                for value in row:
                    if isinstance(value, bytes):
                        with contextlib.suppress(zlib.error):
                            value = zlib.decompress(value)
                        out.append(value)
                    else:
                        out.append(str(value).encode())
    finally:
        conn.close()
    return b"\n".join(out)
