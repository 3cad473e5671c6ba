"""Rewrite a DuckDB file so that an older DuckDB can open it: every table copied, with its rows, into a
new file in that version's storage format; the original is kept beside it as FILE.bak-<storage>.

The lab pinned duckdb 2.0.0 before it moved to 1.5.5 (the DuckLake extension exists for 1.5.5 only), and
a file written by 2.0.0 does not open in 1.5.5. Run this once, with the DuckDB that wrote the file:

    python3 -m venv /tmp/duckdb2 && /tmp/duckdb2/bin/pip install duckdb==2.0.0
    /tmp/duckdb2/bin/python rs_dagster/storage/downgrade.py .rs/rs.duckdb

It imports nothing but duckdb, so it runs from a bare environment. Nothing is replaced unless every table
of the new file holds as many rows as the original's."""

from __future__ import annotations

import argparse
from pathlib import Path

import duckdb

TARGET = "v1.5.0"


def downgrade(path: Path, storage: str = TARGET) -> Path:
    """Rewrite `path` in `storage` format in place; returns the backup of the original."""
    path = Path(path).resolve()
    partial = path.with_name(path.name + ".partial")
    backup = path.with_name(f"{path.name}.bak-{duckdb.__version__}")
    partial.unlink(missing_ok=True)
    con = duckdb.connect()
    try:
        con.execute(f"ATTACH '{_quote(str(path))}' AS old (READ_ONLY)")
        con.execute(f"ATTACH '{_quote(str(partial))}' AS new (STORAGE_VERSION '{_quote(storage)}')")
        con.execute("COPY FROM DATABASE old TO new")
        tables = [row[0] for row in con.execute("SELECT table_name FROM duckdb_tables() WHERE database_name = 'old'").fetchall()]
        for table in tables:
            counts = [con.execute(f'SELECT count(*) FROM {db}."{table}"').fetchone() for db in ("old", "new")]
            if counts[0] != counts[1]:
                raise SystemExit(f"{table}: {counts[0]} rows in {path} but {counts[1]} in the copy; nothing was replaced")
    finally:
        con.close()
    path.replace(backup)
    partial.replace(path)
    return backup


def _quote(text: str) -> str:
    return text.replace("'", "''")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("file", type=Path, help="the DuckDB file (the lab's is .rs/rs.duckdb, or RS_DB)")
    parser.add_argument("--storage", default=TARGET, help=f"storage version to write (default {TARGET}: DuckDB 1.5)")
    args = parser.parse_args(argv)
    backup = downgrade(args.file, args.storage)
    print(f"{args.file}: rewritten in storage {args.storage}; the original is {backup}")


if __name__ == "__main__":
    main()
