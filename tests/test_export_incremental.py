"""The report's export is incremental: over a real evaluation of two scripted models on two tasks
(tests/explore_lab.py), an export after another rebuilds only the groups of views whose rows changed, and
what it leaves in the folder equals, route by route, a full export of the same data made from scratch."""

from __future__ import annotations

import json
import shutil
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import dagster as dg
import duckdb
import pytest
from explore_lab import explored_lab

from rs_dagster.defs.reporting import build_reporting_assets
from rs_dagster.defs.resources import LabResource
from rs_dagster.explore import export as export_module
from rs_dagster.explore import views
from rs_dagster.explore.export import MANIFEST, Export, export
from rs_dagster.explore.queries import LabData


@pytest.fixture(scope="module")
def lab(tmp_path_factory):
    with explored_lab(tmp_path_factory.mktemp("export_incremental")) as settings:
        yield settings


@pytest.fixture
def db(lab, tmp_path) -> Path:
    """A copy of the lab's DuckDB file, for a test to change."""
    copy = tmp_path / "lab.duckdb"
    shutil.copy(lab.db_path, copy)
    return copy


def contents(folder: Path) -> dict[str, str]:
    """Every route data/index.js lists, with the JSON its file holds for it (each listed file exists)."""
    index = (folder / "data" / "index.js").read_text()
    files = json.loads(index.split("window.RS_EXPORT=", 1)[1].rstrip(";\n"))["files"]
    found: dict[str, str] = {}
    for name in set(files.values()):
        for line in (folder / name).read_text().splitlines():
            prefix, payload = line.split("]=", 1)
            route = json.loads(prefix.removeprefix("window.RS_DATA["))
            assert files[route] == name, route
            found[route] = payload.removesuffix(";")
    assert found.keys() == files.keys()
    return found


def fresh(db: Path, tmp_path: Path, cache_dir: Path) -> tuple[Export, dict[str, str]]:
    """A full export of `db` into a new folder, and what it holds."""
    folder = tmp_path / "fresh"
    shutil.rmtree(folder, ignore_errors=True)
    written = export(db, folder, samples_per_point=2, cache_dir=cache_dir)
    assert written.kept == 0 and written.rebuilt == len(written.routes)
    return written, contents(folder)


def same(incremental: Export, full: Export) -> None:
    assert incremental.routes == full.routes and incremental.notes == full.notes
    assert incremental.rebuilt + incremental.kept == len(full.routes)


def test_a_second_export_with_nothing_changed_rebuilds_nothing_and_holds_the_same_views(lab, db, tmp_path):
    out = tmp_path / "out"
    (out / "data").mkdir(parents=True)
    (out / "data" / "v0.js").write_text("window.RS_DATA['/']={};\n")  # an export of the sequential layout, before
    first = export(db, out, samples_per_point=2, cache_dir=lab.cache_dir)
    assert first.kept == 0 and first.rebuilt == len(first.routes) and len(first.rebuilt_groups) == 1 + 2 + 1  # /, 2 tasks, 1 comparison
    assert not (out / "data" / "v0.js").exists()
    before, files = contents(out), sorted(p.name for p in (out / "data").iterdir())
    second = export(db, out, samples_per_point=2, cache_dir=lab.cache_dir)
    assert (second.rebuilt, second.kept, second.rebuilt_groups) == (0, len(first.routes), [])
    same(second, first)
    assert contents(out) == before and sorted(p.name for p in (out / "data").iterdir()) == files
    full, expected = fresh(db, tmp_path, lab.cache_dir)
    same(second, full)
    assert before == expected


def test_a_changed_point_rebuilds_its_task_only_and_equals_a_full_export(lab, db, tmp_path):
    out = tmp_path / "out"
    export(db, out, samples_per_point=2, cache_dir=lab.cache_dir)
    with duckdb.connect(str(db)) as con:
        point = con.execute(
            "SELECT point_id FROM points WHERE model = 'alpha' AND task = 'arithmetic' ORDER BY point_id LIMIT 1"
        ).fetchone()[0]
        con.execute("UPDATE points SET accuracy = 0.123 WHERE model = 'alpha' AND task = 'arithmetic' AND point_id = ?", [point])
    written = export(db, out, samples_per_point=2, cache_dir=lab.cache_dir)
    assert written.rebuilt_groups == ["/task/arithmetic"]
    arithmetic = [r for r in written.routes if "/arithmetic" in r]
    assert written.rebuilt == len(arithmetic) and written.kept == len(written.routes) - len(arithmetic)
    shown = contents(out)
    assert "0.123" in shown[views.route("point", "alpha", "arithmetic", point)]
    full, expected = fresh(db, tmp_path, lab.cache_dir)
    same(written, full)
    assert shown == expected
    # The leaderboard's row of that pair changes too (a re-evaluation rewrites both): the leaderboard and the
    # comparison that read it are rebuilt, the other task is kept.
    with duckdb.connect(str(db)) as con:
        con.execute("UPDATE leaderboard SET accuracy = 0.321 WHERE model = 'alpha' AND task = 'arithmetic'")
    written = export(db, out, samples_per_point=2, cache_dir=lab.cache_dir)
    assert written.rebuilt_groups == ["/", "/compare/alpha/beta"]
    full, expected = fresh(db, tmp_path, lab.cache_dir)
    same(written, full)
    assert contents(out) == expected and "0.321" in expected["/"]


def test_each_group_reads_only_its_own_rows(lab):
    """What decides a rebuild: a task's views read that task's groups, a comparison its two models' leaderboard
    rows (a third model re-evaluated leaves it be), the leaderboard the whole tables."""
    data = LabData(lab.db_path).snapshot(2)
    with data.reading() as reads:
        views.compare_view(data, "alpha", "beta")
    assert reads == {("leaderboard", "alpha"), ("leaderboard", "beta"), ("comparisons", "alpha", "beta")}
    with data.reading() as reads:
        views.task_view(data, "boolean")
    assert {read[0] for read in reads} >= {"points", "projections", "surfaces", "compression", "hazard", "survival"}
    assert all(read[1:] == ("boolean",) for read in reads if len(read) > 1) and ("leaderboard",) not in reads
    with data.reading() as reads:
        views.leaderboard_view(data)
    assert ("leaderboard",) in reads and not any(len(read) > 1 for read in reads)


def test_a_task_whose_rows_are_removed_loses_its_views_and_files(lab, db, tmp_path):
    out = tmp_path / "out"
    before = export(db, out, samples_per_point=2, cache_dir=lab.cache_dir)
    assert "/task/boolean" in before.routes and list((out / "data").glob("task-boolean-*.js"))
    with duckdb.connect(str(db)) as con:
        for (table,) in con.execute("SELECT DISTINCT table_name FROM information_schema.columns WHERE column_name = 'task'").fetchall():
            con.execute(f"DELETE FROM {table} WHERE task = 'boolean'")
    written = export(db, out, samples_per_point=2, cache_dir=lab.cache_dir)
    assert not [r for r in written.routes if "boolean" in r] and not list((out / "data").glob("task-boolean-*.js"))
    assert "/task/boolean" not in json.loads((out / "data" / MANIFEST).read_text())["groups"]
    assert "/task/arithmetic" not in written.rebuilt_groups and "/" in written.rebuilt_groups  # the leaderboard lost the task's rows
    full, expected = fresh(db, tmp_path, lab.cache_dir)
    same(written, full)
    assert contents(out) == expected


@pytest.mark.parametrize("damage", ["missing", "corrupt", "truncated", "other parameters", "a group's file deleted"])
def test_a_missing_or_unreadable_manifest_means_a_full_export(lab, db, tmp_path, damage):
    out = tmp_path / "out"
    first = export(db, out, samples_per_point=2, cache_dir=lab.cache_dir)
    manifest = out / "data" / MANIFEST
    if damage == "missing":
        manifest.unlink()
    elif damage == "corrupt":
        manifest.write_text("{not json")
    elif damage == "truncated":
        manifest.write_text(manifest.read_text()[: len(manifest.read_text()) // 2])
    elif damage == "other parameters":
        saved = json.loads(manifest.read_text())
        saved["header"]["samples_per_point"] = 3
        manifest.write_text(json.dumps(saved))
    else:
        next((out / "data").glob("task-arithmetic-*.js")).unlink()
    written = export(db, out, samples_per_point=2, cache_dir=lab.cache_dir)
    if damage == "a group's file deleted":
        assert written.rebuilt_groups == ["/task/arithmetic"]
    else:
        assert written.kept == 0 and written.rebuilt == len(first.routes)
    same(written, first)
    _, expected = fresh(db, tmp_path, lab.cache_dir)
    assert contents(out) == expected


def test_an_interrupted_export_leaves_the_previous_one_whole(lab, db, tmp_path, monkeypatch):
    out = tmp_path / "out"
    export(db, out, samples_per_point=2, cache_dir=lab.cache_dir)
    before = contents(out)
    with duckdb.connect(str(db)) as con:
        con.execute("UPDATE points SET accuracy = 0.5 WHERE task = 'arithmetic'")
        con.execute("UPDATE points SET accuracy = 0.5 WHERE task = 'boolean'")

    built = views.task_view

    def task_view(data, task):
        if task == "boolean":
            raise KeyboardInterrupt  # after arithmetic's new files are written
        return built(data, task)

    monkeypatch.setattr(export_module.views, "task_view", task_view)
    with pytest.raises(KeyboardInterrupt):
        export(db, out, samples_per_point=2, cache_dir=lab.cache_dir)
    monkeypatch.undo()
    assert contents(out) == before  # index.js still lists the previous files, each there
    written = export(db, out, samples_per_point=2, cache_dir=lab.cache_dir)
    assert written.rebuilt_groups == ["/task/arithmetic", "/task/boolean"]
    _, expected = fresh(db, tmp_path, lab.cache_dir)
    assert contents(out) == expected
    assert sorted(p.name for p in (out / "data").iterdir()) == sorted(
        {
            "index.js",
            MANIFEST,
            *(
                Path(n).name
                for n in set(
                    json.loads((out / "data" / "index.js").read_text().split("window.RS_EXPORT=", 1)[1].rstrip(";\n"))["files"].values()
                )
            ),
        }
    )


def test_two_exports_into_one_folder_at_once_take_turns(lab, db, tmp_path):
    out = tmp_path / "out"
    with ThreadPoolExecutor(2) as pool:
        written = list(pool.map(lambda _: export(db, out, samples_per_point=2, cache_dir=lab.cache_dir), range(2)))
    assert sorted(w.kept for w in written) == [0, len(written[0].routes)]  # the second kept what the first built
    _, expected = fresh(db, tmp_path, lab.cache_dir)
    assert contents(out) == expected


def test_the_report_asset_says_how_many_views_it_rebuilt_and_kept(lab):
    resources = {"lab": LabResource.from_settings(lab)}
    with dg.instance_for_test() as instance:
        counts = []
        for _ in range(2):
            result = dg.materialize(build_reporting_assets(), resources=resources, instance=instance)
            [materialization] = result.asset_materializations_for_node("report")
            counts.append({key: materialization.metadata[key].value for key in ("views", "views_rebuilt", "views_kept")})
    views_count = counts[0]["views"]
    assert counts[1] == {"views": views_count, "views_rebuilt": 0, "views_kept": views_count}  # the second one kept every view
