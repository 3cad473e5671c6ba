"""`rs eval` says "Nothing changed" only when the warehouse shows nothing would change, and repairs a lab
without --force; `rs status` says what is stale and why. Through `rs` in a subprocess, as a user runs it."""

import json
import os
import shutil
import subprocess

import duckdb
import yaml
from helpers import RS, Oracle, lab_env, make_lab, scripted_model

from rs_dagster.settings import PACKAGE_ROOT
from rs_dagster.testing.scripted_server import ScriptedServer

NOTHING = "Nothing changed"


def _rs(args, env, timeout=300):
    result = subprocess.run([*RS, *args], env={**os.environ, **env}, capture_output=True, text=True, timeout=timeout, cwd=PACKAGE_ROOT)
    assert result.returncode == 0, (args, result.stdout[-2000:], result.stderr[-3000:])
    return result


def _eval(args, env, server):
    """(whether rs eval said nothing changed, requests the server received)."""
    before = server.completion_requests
    result = _rs(["eval", "--model", "scripted", *args], env)
    return NOTHING in result.stderr, server.completion_requests - before


def _status(env, *args):
    """`rs status` as a table (whitespace folded), and as JSON."""
    table = " ".join(_rs(["status", "--model", "scripted", *args], env).stdout.split())
    return table, json.loads(_rs(["status", "--model", "scripted", "--json", *args], env).stdout)


def _why(env, *args):
    """Every reason `rs status --json` gives, the report's prefixed `report: `, in one text."""
    _, status = _status(env, *args)
    return " ".join([*(why for pair in status["pairs"] for why in pair["stale"]), *(f"report: {why}" for why in status["report"])])


def _rows(db, sql):
    with duckdb.connect(str(db), read_only=True) as con:
        return con.sql(sql).fetchall()


def test_the_suite_and_the_scope_are_compared_resolved(tmp_path):
    probe = make_lab(tmp_path / "probe", {})
    with ScriptedServer(Oracle(probe, items_per_point=4)) as server:
        suite = {"tasks": ["boolean"], "tiers": ["easy"], "precision": 4}
        lab = make_lab(tmp_path / "lab", {"scripted": scripted_model(server.base_url, suite=suite)})
        env = lab_env(lab)
        said, sent = _eval([], env, server)
        assert not said and sent > 0
        assert _eval([], env, server) == (True, 0)

        assert _eval(["--tier", "easy,medium", "--samples", "4"], env, server)[0] is False
        assert _eval(["--tier", "medium,easy,medium", "--samples", "4"], env, server) == (True, 0)  # same scope, written otherwise
        assert _eval(["--tasks", "boolean,boolean", "--tier", "easy", "--samples", "4"], env, server) == (True, 0)  # an earlier scope
        assert _eval([], {**env, "RS_MAX_REQUESTS": "1"}, server) == (True, 0)  # the request maximum counts what is not stored

        models = yaml.safe_load(lab.models_file.read_text())
        models["models"]["scripted"]["suite"]["tiers"] = ["easy", "hard"]  # the nightly run evaluates the suite
        lab.models_file.write_text(yaml.safe_dump(models))
        assert "tiers easy, hard at 4 never completed" in _why(env)
        said, sent = _eval([], env, server)
        assert not said and sent > 0  # the new tier is measured
        hard = _rows(lab.db_path, "SELECT count(*) FROM scored_results s JOIN test_cases t USING (test_case_id) WHERE list_contains(t.tiers, 'hard')")
        assert hard[0][0] > 0
        assert _eval([], env, server) == (True, 0)
        table, status = _status(env)
        assert "would change nothing" in table and "tiers easy, hard at 4" in table and status["current"]


def test_a_lab_is_repaired_from_what_it_holds(tmp_path):
    probe = make_lab(tmp_path / "probe", {})
    with ScriptedServer(Oracle(probe, items_per_point=4)) as server:
        lab = make_lab(tmp_path / "lab", {"scripted": scripted_model(server.base_url, suite={"tasks": ["boolean"], "precision": 4})})
        env = lab_env(lab)
        _eval([], env, server)
        points = _rows(lab.db_path, "SELECT count(*) FROM points")[0][0]
        assert points > 1

        with duckdb.connect(str(lab.db_path)) as con:  # a point deleted by hand
            con.execute("DELETE FROM points WHERE point_id = (SELECT min(point_id) FROM points)")
        table, status = _status(env)
        assert "stale" in table and not status["current"] and status["pairs"][0]["requests"] == 0
        assert f"points: {points - 1} rows now, {points} when evaluation ran" in status["pairs"][0]["stale"]
        assert _eval([], env, server) == (False, 0)  # rebuilt from the stored answers, nothing asked again
        assert _rows(lab.db_path, "SELECT count(*) FROM points")[0][0] == points
        assert _eval([], env, server) == (True, 0)

        (lab.report_dir / "index.html").unlink()  # the report deleted
        assert "report: report folder is missing (it was there when report ran)" in _why(env)
        assert _eval([], env, server) == (False, 0)
        assert (lab.report_dir / "index.html").is_file()

        older = tmp_path / "older.duckdb"
        shutil.copy(lab.db_path, older)
        _eval(["--tier", "easy,medium"], env, server)  # a wider scope, then the older file restored
        shutil.copy(older, lab.db_path)
        why = _why(env, "--tier", "easy,medium")
        assert "tiers easy, medium at 4 never completed" in why and "report: report folder: " in why
        assert _eval(["--tier", "easy,medium"], env, server) == (False, 0)  # answered from the response cache
        assert _eval(["--tier", "easy,medium"], env, server) == (True, 0)

        fresh = {**env, "RS_DB": str(tmp_path / "new.duckdb")}  # a new warehouse, the same instance
        assert _why(fresh).startswith("never evaluated here report: report never completed in " + fresh["RS_DB"])
        assert _eval([], fresh, server) == (False, 0)
        board = _rows(tmp_path / "new.duckdb", "SELECT count(*) FROM leaderboard")[0][0]
        assert board > 0
        assert _eval([], fresh, server) == (True, 0)
        assert _rows(lab.db_path, "SELECT count(*) FROM points")[0][0] > 0  # the first file untouched


def test_a_partition_recorded_alone_has_the_fingerprint_the_status_check_computes_for_every_partition(tmp_path):
    """Snapshot.record reads only the run's partition (one query); `rs status` sums every partition at once.
    Both must give the same text, or a lab would read as stale right after its run."""
    from rs_dagster.storage import fingerprints
    from rs_dagster.storage.warehouse import Warehouse

    warehouse = Warehouse(tmp_path / "rs.duckdb")
    with duckdb.connect(str(warehouse.path)) as con:
        con.execute("CREATE TABLE points (model TEXT, task TEXT, point_id TEXT, accuracy DOUBLE)")
        con.execute("INSERT INTO points VALUES ('a', 'x', 'p1', 0.5), ('a', 'x', 'p2', 0.25), ('b', 'x', 'p1', 1.0), ('a', 'y', 'p1', NULL)")
        con.execute("CREATE TABLE completions (model TEXT, task TEXT, test_case_id TEXT, request_hash TEXT, error TEXT, text TEXT)")
        con.execute("INSERT INTO completions VALUES ('a', 'x', 't1', 'r1', NULL, 'answer'), ('a', 'x', 't2', 'r2', 'timeout', NULL)")
    present = fingerprints.existing_tables(warehouse)
    tables = ["points", "completions", "hazard"]  # hazard: not in the warehouse
    for model, task in [("a", "x"), ("b", "x"), ("a", "y"), ("c", "z")]:
        alone = fingerprints.one_partition_fingerprints(warehouse, tables, present, model, task)
        every = {table: fingerprints.partition_fingerprints(warehouse, table, present).get((model, task), fingerprints.ABSENT) for table in tables}
        assert alone == every, (model, task)
    assert fingerprints.one_partition_fingerprints(warehouse, tables, present, "c", "z") == dict.fromkeys(tables, fingerprints.ABSENT)
