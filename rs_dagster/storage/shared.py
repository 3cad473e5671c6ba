"""Which warehouse the lab uses, from the environment: the embedded DuckDB file (RS_DB, the default) or a
warehouse many hosts write at once (RS_WAREHOUSE=ducklake:<PostgreSQL DSN>): a DuckLake catalog in
PostgreSQL with its Parquet data files in a folder every host mounts (RS_WAREHOUSE_DATA).

The DSN may hold a password (better: leave it out and let libpq read PGPASSWORD or ~/.pgpass). It is read
from the environment only and never printed: every message shows `mask_dsn(dsn)`. Standard library only,
so that rs_dagster.settings can import it without loading DuckDB."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import PurePosixPath
from urllib.parse import unquote, urlsplit, urlunsplit

from rs_dagster.errors import InputError

WAREHOUSE_ENV = "RS_WAREHOUSE"
WAREHOUSE_DATA_ENV = "RS_WAREHOUSE_DATA"
LAKE_SCHEME = "ducklake:"
EXPECTED = (
    f"expected {LAKE_SCHEME}<PostgreSQL DSN> (e.g. {LAKE_SCHEME}postgresql://user@host:5432/lake, or "
    f"{LAKE_SCHEME}dbname=lake host=db.example) for a warehouse many hosts share, or unset for the DuckDB file RS_DB"
)
_KEYWORD_PASSWORD = re.compile(r"(?i)(\bpassword\s*=\s*)('(?:[^'\\]|\\.)*'|[^\s&]*)")


def mask_dsn(dsn: str) -> str:
    """`dsn` with its password (URL user info, `password=` keyword or query parameter) shown as ***."""
    if "://" in dsn:
        try:
            parts = urlsplit(dsn)
        except ValueError:
            return "<unreadable DSN>"
        netloc = parts.netloc
        if "@" in netloc:
            userinfo, host = netloc.rsplit("@", 1)
            if ":" in userinfo:
                userinfo = userinfo.split(":", 1)[0] + ":***"
            netloc = f"{userinfo}@{host}"
        return urlunsplit(parts._replace(netloc=netloc, query=_KEYWORD_PASSWORD.sub(r"\1***", parts.query)))
    return _KEYWORD_PASSWORD.sub(r"\1***", dsn)


def dsn_secrets(dsn: str) -> list[str]:
    """The password in `dsn` in each form it may be echoed (as written, URL-decoded, unquoted); [] when none."""
    found: list[str] = []
    if "://" in dsn:
        try:
            parts = urlsplit(dsn)
        except ValueError:
            return [dsn]
        userinfo = parts.netloc.rsplit("@", 1)[0] if "@" in parts.netloc else ""
        if ":" in userinfo:
            found.append(userinfo.split(":", 1)[1])
    found += [match.group(2) for match in _KEYWORD_PASSWORD.finditer(dsn)]
    forms = {form for secret in found for form in (secret, unquote(secret), secret.strip("'")) if form}
    return sorted(forms, key=len, reverse=True)


def scrub(text: str, dsn: str) -> str:
    """`text` (an error message, say) with the DSN shown masked and its password nowhere."""
    text = text.replace(dsn, mask_dsn(dsn))
    for secret in dsn_secrets(dsn):
        text = text.replace(secret, "***")
    return text


@dataclass(frozen=True)
class SharedWarehouse:
    """A DuckLake warehouse: its catalog in the PostgreSQL database of `catalog` (a libpq DSN, URL or
    keywords; may hold a password, so it is never shown: str() and repr() mask it) and its data files in
    `data_path`, a folder every host mounts at the same path (None: the folder the lake was created with)."""

    catalog: str = field(repr=False)
    data_path: str | None = None

    def __str__(self) -> str:
        data = f" (data files in {self.data_path})" if self.data_path else ""
        return f"{LAKE_SCHEME}{mask_dsn(self.catalog)}{data}"

    def __repr__(self) -> str:
        return f"SharedWarehouse({self})"

    @property
    def spec(self) -> str:
        """The RS_WAREHOUSE value that selects this warehouse (holds the password, if any: never print it)."""
        return f"{LAKE_SCHEME}{self.catalog}"


def parse_warehouse(value: str | None, data: str | None = None) -> SharedWarehouse | None:
    """RS_WAREHOUSE (and RS_WAREHOUSE_DATA) as the warehouse they select: None for the embedded DuckDB file
    (unset, empty or `duckdb`). A value that selects nothing is an InputError naming the variable, what was
    expected, and never the password."""
    value = (value or "").strip()
    data = (data or "").strip() or None
    if value in ("", "duckdb"):
        if data:
            raise InputError(f"{WAREHOUSE_DATA_ENV} is set but {WAREHOUSE_ENV} is not: set {WAREHOUSE_ENV}={LAKE_SCHEME}<PostgreSQL DSN> "
                             f"for a shared warehouse, or unset {WAREHOUSE_DATA_ENV} to use the DuckDB file RS_DB")
        return None
    if not value.startswith(LAKE_SCHEME):
        shown = value.split(":", 1)[0][:24] + (":…" if ":" in value else "")
        raise InputError(f"{WAREHOUSE_ENV}={shown!r} selects no warehouse: {EXPECTED}")
    catalog = value[len(LAKE_SCHEME):].strip()
    if catalog.startswith("postgres:") and not catalog.startswith("postgres://"):
        catalog = catalog[len("postgres:"):].strip()  # DuckLake's own spelling, ducklake:postgres:<dsn>
    if "://" in catalog:
        try:
            parts = urlsplit(catalog)
            parts.port  # noqa: B018 - raises ValueError on a port that is not a number
        except ValueError as exc:
            raise InputError(f"{WAREHOUSE_ENV}={LAKE_SCHEME}{mask_dsn(catalog)}: not a PostgreSQL URL ({exc}); {EXPECTED}") from None
        if parts.scheme not in ("postgresql", "postgres"):
            raise InputError(f"{WAREHOUSE_ENV}: the catalog must be a PostgreSQL database (postgresql://…), not {parts.scheme}://…; "
                             "a warehouse many hosts write at once needs a catalog server")
    elif not re.match(r"^\s*\w+\s*=", catalog):
        first = catalog.split(":", 1)[0][:24]
        raise InputError(f"{WAREHOUSE_ENV}={LAKE_SCHEME}{first!r}…: not a PostgreSQL DSN; {EXPECTED}")
    if data is not None:
        if "://" in data:
            raise InputError(f"{WAREHOUSE_DATA_ENV}={data!r}: expected a folder path (object stores are not supported)")
        if not PurePosixPath(data).is_absolute():
            raise InputError(f"{WAREHOUSE_DATA_ENV}={data!r}: expected an absolute folder path that every host mounts at the same place")
        data = data.rstrip("/") + "/"
    return SharedWarehouse(catalog=catalog, data_path=data)
