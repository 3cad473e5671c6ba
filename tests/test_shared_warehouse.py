"""The warehouse many hosts share (RS_WAREHOUSE=ducklake:<PostgreSQL DSN>): the storage contract on a
DuckLake whose catalog is a real PostgreSQL server, writers in separate processes at the same moment, and
a real evaluation (`rs eval` against the scripted server) whose tables, SQL models, leaderboard and
explorer views equal those of the embedded DuckDB file. The DSN's password never lands anywhere."""

from __future__ import annotations

import base64
import gzip
import itertools
import os
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import dagster as dg
import duckdb
import pandera.polars as pa
import polars as pl
import pytest
from helpers import RS, Oracle, lab_env, make_lab

from rs_dagster.defs.resources import LabResource
from rs_dagster.errors import InputError, SchemaError, StorageError
from rs_dagster.explore import views
from rs_dagster.explore.queries import LabData
from rs_dagster.settings import PACKAGE_ROOT, Settings
from rs_dagster.storage.shared import SharedWarehouse, mask_dsn, parse_warehouse, scrub
from rs_dagster.storage.warehouse import Warehouse
from rs_dagster.testing.postgres import create_database, postgres_available, postgres_server, with_database
from rs_dagster.testing.scripted_server import ScriptedServer

SECRET = "Tr0ub4dor-and-3"


def _lake_ready() -> str | None:
    """Why the DuckLake tests cannot run here, or None."""
    if not postgres_available():
        return "PostgreSQL (initdb) is not installed"
    from rs_dagster.storage.ducklake import EXTENSIONS, extension_file

    try:
        for name in EXTENSIONS:
            extension_file(name)
    except StorageError as exc:
        return str(exc)
    return None


needs_lake = pytest.mark.skipif(bool(_lake_ready()), reason=_lake_ready() or "")


@pytest.fixture(scope="module")
def postgres():
    with postgres_server() as dsn:
        yield dsn


_databases = itertools.count()


@pytest.fixture
def lake(postgres, tmp_path) -> SharedWarehouse:
    """A new, empty lake: its own catalog database on the module's server, its data files under tmp_path."""
    catalog = create_database(postgres, f"lake_{next(_databases)}")
    return parse_warehouse(f"ducklake:{catalog}", str(tmp_path / "lake-data"))


def lake_warehouse(target: SharedWarehouse, home: Path) -> Warehouse:
    return Warehouse.from_settings(Settings(home=home, inputs=home, db_path=home / "unused.duckdb", dagster_home=home, warehouse=target))


# --- the setting ----------------------------------------------------------------------------------------


def test_the_setting_selects_the_warehouse_and_bad_values_say_what_was_expected(monkeypatch, tmp_path):
    assert parse_warehouse(None) is None and parse_warehouse("") is None and parse_warehouse("duckdb") is None
    url = parse_warehouse("ducklake:postgresql://rs@db.example:5432/lake", "/shared/lake")
    assert url == SharedWarehouse("postgresql://rs@db.example:5432/lake", "/shared/lake/")
    assert parse_warehouse("ducklake:postgres:dbname=lake host=db") == SharedWarehouse("dbname=lake host=db", None)
    for value, expected in [
        ("postgresql://rs@db/lake", "RS_WAREHOUSE='postgresql:…' selects no warehouse: expected ducklake:<PostgreSQL DSN>"),
        ("ducklake:mysql://db/lake", "the catalog must be a PostgreSQL database"),
        ("ducklake:lake.ducklake", "not a PostgreSQL DSN"),
        ("ducklake:postgresql://rs@db:port/lake", "not a PostgreSQL URL"),
    ]:
        with pytest.raises(InputError, match="RS_WAREHOUSE") as raised:
            parse_warehouse(value)
        assert expected in str(raised.value) and "\n" not in str(raised.value)
    with pytest.raises(InputError, match="RS_WAREHOUSE_DATA='relative/path': expected an absolute folder path"):
        parse_warehouse("ducklake:postgresql://db/lake", "relative/path")
    with pytest.raises(InputError, match="RS_WAREHOUSE_DATA is set but RS_WAREHOUSE is not"):
        parse_warehouse(None, "/shared/lake")

    monkeypatch.setenv("RS_HOME", str(tmp_path))
    monkeypatch.setenv("RS_WAREHOUSE", f"ducklake:postgresql://rs:{SECRET}@db.example/lake")
    monkeypatch.setenv("RS_WAREHOUSE_DATA", "/shared/lake")
    settings = Settings.from_env()
    assert settings.warehouse is not None and SECRET in settings.warehouse.catalog
    assert SECRET not in settings.warehouse_location and SECRET not in repr(settings) and SECRET not in str(settings.warehouse)
    assert settings.warehouse_location == "ducklake:postgresql://rs:***@db.example/lake (data files in /shared/lake/)"
    lab = LabResource.from_settings(settings)  # the Dagster resource holds a reference to the variable, not the DSN
    assert isinstance(lab.warehouse_spec, dg.EnvVar) and lab.warehouse_spec.env_var_name == "RS_WAREHOUSE"
    assert lab.settings.warehouse == settings.warehouse
    monkeypatch.delenv("RS_WAREHOUSE_DATA")
    monkeypatch.setenv("RS_WAREHOUSE", "sqlite:lake.db")
    result = subprocess.run([*RS, "leaderboard"], env={**os.environ}, capture_output=True, text=True, cwd=PACKAGE_ROOT, timeout=120)
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert "RS_WAREHOUSE='sqlite:…' selects no warehouse" in " ".join(result.stderr.split())


def test_a_password_is_masked_in_every_form():
    for dsn in (f"postgresql://rs:{SECRET}@db/lake", f"postgresql://rs@db/lake?password={SECRET}&sslmode=require",
                f"dbname=lake password={SECRET} host=db", f"dbname=lake password='{SECRET}' host=db"):
        assert SECRET not in mask_dsn(dsn) and "***" in mask_dsn(dsn)
        assert scrub(f"could not connect to {dsn}: password {SECRET} refused", dsn).count(SECRET) == 0
    assert mask_dsn("postgresql://rs@db:5432/lake") == "postgresql://rs@db:5432/lake"


# --- the storage contract on a lake --------------------------------------------------------------------


class Rows(pa.DataFrameModel):
    model: str
    task: str
    item: int
    value: float = pa.Field(ge=0)


def rows(model: str, task: str, items: range, value: float = 0.5) -> pl.DataFrame:
    return pl.DataFrame({"model": [model] * len(items), "task": [task] * len(items), "item": list(items), "value": [value] * len(items)})


def snapshots(warehouse: Warehouse) -> int:
    return int(warehouse.query("SELECT count(*) AS n FROM ducklake_snapshots('rs_lake')")["n"][0])


@needs_lake
def test_the_storage_contract_holds_on_the_lake(lake, tmp_path):
    warehouse = lake_warehouse(lake, tmp_path / "host")
    keys = {"model": "m", "task": "t"}
    assert not warehouse.has_table("rows") and warehouse.table("rows").is_empty() and warehouse.count_rows("rows") == 0
    warehouse.replace_partition("rows", Rows, rows("m", "t", range(5)), keys)
    warehouse.replace_partition("rows", Rows, rows("m", "u", range(3)), {"model": "m", "task": "u"})
    assert warehouse.has_table("rows") and warehouse.count_rows("rows") == 8 and warehouse.count_rows("rows", keys) == 5

    warehouse.replace_partition("rows", Rows, rows("m", "t", range(2)), keys)  # replaced whole: 2 rows, the other partition kept
    assert warehouse.table("rows", keys, order_by="item")["item"].to_list() == [0, 1] and warehouse.count_rows("rows") == 5

    warehouse.upsert_rows("rows", Rows, rows("m", "t", range(1, 4), value=2.0), keys, "item")  # accumulation: 0 stays, 1 replaced
    stored = warehouse.table("rows", keys, order_by="item")
    assert stored["item"].to_list() == [0, 1, 2, 3] and stored["value"].to_list() == [0.5, 2.0, 2.0, 2.0]

    before = snapshots(warehouse)  # unchanged rows are never rewritten: no new snapshot, no new files
    warehouse.upsert_rows("rows", Rows, rows("m", "t", range(1, 4), value=2.0), keys, "item")
    warehouse.replace_partition("rows", Rows, stored, keys)
    assert snapshots(warehouse) == before

    with pytest.raises(SchemaError, match=r"rows.value: greater_than_or_equal_to\(0\)"):
        warehouse.replace_partition("rows", Rows, rows("m", "t", range(9), value=-1.0), keys)
    with pytest.raises(SchemaError, match="refusing to write outside the partition"):
        warehouse.replace_partition("rows", Rows, rows("m", "other", range(9)), keys)
    assert warehouse.table("rows", keys, order_by="item").equals(stored) and snapshots(warehouse) == before

    class Wider(Rows):
        note: str

    warehouse.replace_partition("rows", Wider, rows("m", "v", range(2)).with_columns(note=pl.lit("new column")), {"model": "m", "task": "v"})
    assert [c for c, _ in warehouse.columns("rows")] == ["model", "task", "item", "value", "note"]
    assert warehouse.table("rows", keys)["note"].is_null().all()

    warehouse.replace_tables({"a": (Rows, rows("x", "y", range(3))), "b": (Rows, rows("x", "z", range(4)))})
    assert (warehouse.count_rows("a"), warehouse.count_rows("b")) == (3, 4)
    other_host = lake_warehouse(SharedWarehouse(lake.catalog, None), tmp_path / "other-host")  # the lake's own data path
    assert other_host.count_rows("rows") == warehouse.count_rows("rows") and other_host.location == f"ducklake:{lake.catalog}"


@needs_lake
def test_opening_a_lake_fails_with_a_clear_message_and_never_shows_the_password(postgres, tmp_path):
    new = with_database(postgres, "lake_new").replace("rs@", f"rs:{SECRET}@")
    create_database(postgres, "lake_new")
    with pytest.raises(StorageError, match="is new and needs a folder for its data files: set RS_WAREHOUSE_DATA") as raised:
        lake_warehouse(parse_warehouse(f"ducklake:{new}"), tmp_path).has_table("x")
    assert SECRET not in str(raised.value)
    missing = with_database(postgres, "no_such_database").replace("rs@", f"rs:{SECRET}@")
    with pytest.raises(StorageError, match=r"cannot open the shared warehouse ducklake:postgresql://rs:\*\*\*@") as raised:
        lake_warehouse(parse_warehouse(f"ducklake:{missing}", str(tmp_path / "d")), tmp_path).has_table("x")
    assert SECRET not in str(raised.value) and "no_such_database" in str(raised.value)


WRITER = textwrap.dedent("""
    import sys, time
    from pathlib import Path
    import pandera.polars as pa, polars as pl
    from rs_dagster.settings import Settings
    from rs_dagster.storage import ducklake
    from rs_dagster.storage.warehouse import Warehouse

    conflicts = []
    def is_conflict(exc, seen=ducklake.is_conflict):
        conflicts.append(seen(exc))
        return conflicts[-1]
    ducklake.is_conflict = is_conflict  # counted: how many commits lost to another writer's and were run again

    class Rows(pa.DataFrameModel):
        model: str
        task: str
        item: int
        value: float

    me, writers, rounds, gate = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), Path(sys.argv[4])
    warehouse = Warehouse.from_settings(Settings.from_env())
    keys = {"model": "m", "task": me}
    (gate / me).touch()
    while len(list(gate.iterdir())) < writers:  # every writer is ready: they all write at the same moment
        time.sleep(0.005)
    for round in range(rounds):
        frame = pl.DataFrame({"model": "m", "task": me, "item": list(range(50)), "value": float(round)})
        warehouse.replace_partition("replaced", Rows, frame, keys)
        more = pl.DataFrame({"model": "m", "task": me, "item": [0, *range(10 * round + 1, 10 * round + 11)], "value": float(round)})
        warehouse.upsert_rows("accumulated", Rows, more, keys, "item")
    print("done", me, "retried", sum(conflicts))
""")


@needs_lake
def test_writers_in_separate_processes_write_one_table_at_once_and_every_row_lands_once(lake, tmp_path):
    """Four hosts' worth of writers (each its own process and connection) create the same table and
    rewrite and extend their partitions of it at the same moment: conflicts are retried, none surfaces."""
    writers, rounds = 4, 3
    gate = tmp_path / "gate"
    gate.mkdir()
    env = {**os.environ, "RS_HOME": str(tmp_path / "host"), "RS_WAREHOUSE": lake.spec, "RS_WAREHOUSE_DATA": lake.data_path or ""}
    processes = [
        subprocess.Popen([sys.executable, "-c", WRITER, f"t{n}", str(writers), str(rounds), str(gate)], env=env, cwd=PACKAGE_ROOT,
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        for n in range(writers)
    ]
    results = [(p.wait(timeout=240), *p.communicate()) for p in processes]
    for code, stdout, stderr in results:
        assert code == 0 and "done" in stdout, stderr[-3000:]
        print(stdout.strip())
        assert "conflict" not in stderr.lower() and "Traceback" not in stderr
    reader = lake_warehouse(lake, tmp_path / "reader")
    replaced = reader.query("SELECT task, item, count(*) AS n, max(value) AS v FROM replaced GROUP BY ALL")
    assert replaced.height == writers * 50 and (replaced["n"] == 1).all() and (replaced["v"] == rounds - 1).all()  # the last replacement
    accumulated = reader.query("SELECT task, item, count(*) AS n, max(value) AS v FROM accumulated GROUP BY ALL")
    assert accumulated.height == writers * (1 + 10 * rounds) and (accumulated["n"] == 1).all()  # every upserted row, exactly once
    assert (accumulated.filter(pl.col("item") == 0)["v"] == rounds - 1).all()  # a row upserted again holds its last value


# --- a real evaluation ---------------------------------------------------------------------------------


def _rs(args: list[str], env: dict[str, str]) -> subprocess.CompletedProcess:
    return subprocess.run([*RS, *args], env={**os.environ, **env}, capture_output=True, text=True, timeout=600, cwd=PACKAGE_ROOT)


def _tree_holds(root: Path, text: bytes) -> list[Path]:
    return [path for path in root.rglob("*") if path.is_file() and text in path.read_bytes()]


@needs_lake
def test_an_evaluation_on_the_lake_gives_the_leaderboard_and_views_of_the_duckdb_file(postgres, tmp_path):
    catalog = create_database(postgres, "lake_eval").replace("rs@", f"rs:{SECRET}@")  # trust auth: the password is never checked
    data = tmp_path / "lake-data"
    evaluation = ["eval", "--model", "adhoc", "--served-model", "scripted", "--tasks", "arithmetic", "--tier", "easy", "--samples", "4"]
    labs = {"file": make_lab(tmp_path / "file", {}), "lake": make_lab(tmp_path / "lake", {})}
    shared = {"RS_WAREHOUSE": f"ducklake:{catalog}", "RS_WAREHOUSE_DATA": str(data)}
    outputs = {}
    with ScriptedServer(Oracle(labs["file"], items_per_point=4)) as server:
        for name, lab in labs.items():
            env = {**lab_env(lab), **(shared if name == "lake" else {})}
            started = time.monotonic()
            result = _rs([*evaluation, "--base-url", server.base_url], env)
            assert result.returncode == 0, result.stderr[-3000:]
            print(f"rs eval on the {name}: {time.monotonic() - started:.1f}s")
            board = _rs(["leaderboard"], env)
            assert board.returncode == 0, board.stderr[-3000:]
            outputs[name] = result.stdout + result.stderr + board.stdout + board.stderr
    assert "ducklake:postgresql://rs:***@127.0.0.1" in " ".join(outputs["lake"].split())
    assert not labs["lake"].db_path.exists()  # nothing went to a DuckDB file

    target = parse_warehouse(shared["RS_WAREHOUSE"], shared["RS_WAREHOUSE_DATA"])
    assert target is not None
    warehouses = {"file": Warehouse(labs["file"].db_path), "lake": lake_warehouse(target, labs["lake"].home)}
    volatile = ("dagster_run_id", "completion_run_id", "created_at", "latency_s", "queue_wait_s", "generated_at", "materialized_at")
    for table in ("scored_results", "points", "leaderboard", "surfaces", "projections", "reasonscore"):
        frames = [warehouses[name].table(table) for name in ("file", "lake")]
        frames = [f.drop([c for c in f.columns if c in volatile or c.endswith("_at")]) for f in frames]
        frames = [f.sort(f.columns) for f in frames]
        assert (frames[0].height > 0 or table in ("surfaces", "projections")) and frames[0].equals(frames[1]), table

    file_view, lake_view = (views.leaderboard_view(LabData(warehouses[name]).snapshot(2)) for name in ("file", "lake"))
    assert lake_view == file_view
    with LabData(warehouses["lake"]).session() as reads:
        assert views.task_view(reads, "arithmetic") == views.task_view(LabData(warehouses["file"]), "arithmetic")
    assert (labs["lake"].report_dir / "index.html").exists()  # the report asset exported from the lake
    again = _rs([*evaluation], {**lab_env(labs["lake"]), **shared})  # freshness is read from the lake as from a file
    assert again.returncode == 0 and "Nothing changed" in again.stderr, again.stderr[-3000:]

    secret = SECRET.encode()
    assert SECRET not in outputs["lake"]
    assert not _tree_holds(labs["lake"].home, secret)  # the Dagster instance (runs, event logs), report, caches
    assert not _tree_holds(data, secret)  # the lake's data files
    for table in warehouses["lake"].query("SELECT table_name FROM information_schema.tables WHERE table_catalog = 'rs_lake'")["table_name"]:
        frame = warehouses["lake"].table(table)
        assert SECRET not in frame.select(pl.col(pl.String)).write_csv(), table


# --- a DuckDB file of a newer DuckDB: never locked out ---------------------------------------------------


EMPTY_DUCKDB_2_0_FILE = (  # gzip + base64 of an empty database file written by duckdb 2.0.0 (storage version 999)
    "H4sIAAAAAAACA+3XvQqBARQG4C8UV2BxDb7kZ1Z+SpmNFn+zDL4MrsDiPqz6LoArcBEyUDYrg6QUWZTheZa30zmd/d2da/l4eVo1OvX2IRl8"
    "ZVoMC2Hh/X5QKfd7vWFpMPr8Z79Ij9eXbXWSiBqt+eoYAAAAAD+RbUVxd5ObPebri+dl6h6ZezQD/R8AAAD0f/0fAAAA/sUNW1VjeQAwAAA="
)


@pytest.mark.skipif(duckdb.__version__.startswith("2."), reason="this DuckDB reads the files duckdb 2.0.0 writes")
def test_a_file_of_a_newer_duckdb_is_refused_with_the_way_to_convert_it(tmp_path):
    """The lab moved from duckdb 2.0.0 to 1.5.5 (the DuckLake extension's version), which cannot read a file
    2.0.0 wrote: opening one says how to convert it, in one line, and changes nothing."""
    newer = tmp_path / "rs.duckdb"
    newer.write_bytes(gzip.decompress(base64.b64decode(EMPTY_DUCKDB_2_0_FILE)))
    before = newer.read_bytes()
    with pytest.raises(StorageError, match="written by a newer DuckDB than this one") as raised:
        Warehouse(newer).count_rows("rows")
    assert "downgrade.py" in str(raised.value) and "pip install duckdb==2.0.0" in str(raised.value) and "\n" not in str(raised.value)
    assert newer.read_bytes() == before


def test_the_converter_rewrites_a_file_for_an_older_duckdb_and_keeps_every_row_and_the_original(tmp_path):
    path = tmp_path / "rs.duckdb"
    warehouse = Warehouse(path)
    warehouse.replace_partition("rows", Rows, rows("m", "t", range(40)), {"model": "m", "task": "t"})
    warehouse.replace_tables({"leaderboard": (Rows, rows("m", "t", range(3)))})
    warehouse.release()
    script = PACKAGE_ROOT / "rs_dagster" / "storage" / "downgrade.py"
    converted = subprocess.run([sys.executable, str(script), str(path)], capture_output=True, text=True, timeout=120)
    assert converted.returncode == 0, converted.stderr
    assert Warehouse(path).count_rows("rows") == 40 and Warehouse(path).count_rows("leaderboard") == 3
    assert [p.name for p in tmp_path.glob("rs.duckdb.bak-*")] and not list(tmp_path.glob("*.partial"))
