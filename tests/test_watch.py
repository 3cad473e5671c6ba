"""Issue 24 over real HTTP: a watched model's canary asked afresh each simulated night (the schedule's
scheduled_execution_time), drift noticed on the night and the task it happens, a silent fingerprint change
noticed, unwatched models never asked; and the memorisation gap of a scripted server that knows the
published items against an honest one."""

import os
import subprocess
from datetime import timedelta

import dagster as dg
import polars as pl
import pytest
from helpers import RS, Known, Oracle, _wrong, lab_env, make_lab, scripted_model
from nights_lab import ITEMS, STABLE_NIGHTS, WATCH, NightlyServer, draw, night_time, run_schedule

from rs_dagster.definitions import build_definitions
from rs_dagster.orchestrate import StepsFailed, evaluate, watch_night
from rs_dagster.settings import PACKAGE_ROOT, Settings
from rs_dagster.stats.drift import DEFAULT_ALPHA
from rs_dagster.storage.warehouse import Warehouse
from rs_dagster.tasks.generation import generate_point
from rs_dagster.tasks.manifold import load_manifolds
from rs_dagster.tasks.selection import select_points
from rs_dagster.testing.scripted_server import Reply, ScriptedServer
from rs_dagster.watch import fresh_seed


def _alarms(warehouse: Warehouse, night: str) -> pl.DataFrame:
    return warehouse.query(f"SELECT * FROM drift WHERE night = '{night}' AND alarm ORDER BY task, scope")


def test_watched_nights_flag_a_drop_and_a_fingerprint_change_and_never_ask_unwatched_models(tmp_path):
    hosted, local_oracle = NightlyServer(make_lab(tmp_path, {})), Oracle(make_lab(tmp_path / "probe", {}), items_per_point=8)
    with ScriptedServer(hosted) as hosted_server, ScriptedServer(local_oracle) as local_server:
        lab = make_lab(tmp_path / "lab", {
            "hosted": scripted_model(hosted_server.base_url, watch=WATCH, suite={"tasks": ["arithmetic"], "precision": 4}),
            "local": scripted_model(local_server.base_url, suite={"tasks": ["arithmetic"], "precision": 4}),
        })
        defs = build_definitions(lab)
        warehouse = Warehouse.from_settings(lab)
        with dg.instance_for_test() as instance:
            evaluate(lab, instance, ["local"])  # the unwatched model was evaluated before the nights
            local_before = local_server.completion_requests
            assert local_before == 8
            checks: dict[tuple[str, str], dg.AssetCheckEvaluation] = {}
            for number in range(1, STABLE_NIGHTS + 3):
                when = night_time(number)
                night = hosted.enter(number, when)
                sent_before = hosted_server.completion_requests
                watched = run_schedule(defs, instance, "watched_nights", when)
                assert sorted(r.partition_key for r, _ in watched) == ["hosted|arithmetic", "hosted|boolean"], night
                # the nightly evaluation of the unwatched model (the watched one's own suite is as before this issue)
                nightly = run_schedule(defs, instance, "nightly_evaluation", when, models=("local",))
                assert [r.partition_key for r, _ in nightly] == ["local|arithmetic"]
                for request, result in watched + nightly:
                    assert result.success, night
                    for check in result.get_asset_check_evaluations():
                        if check.check_name == "no_drift_since_last_night":
                            checks[(night, request.partition_key)] = check
                assert hosted_server.completion_requests - sent_before == 2 * 2 * ITEMS, night  # each night a complete, fresh canary
                assert local_server.completion_requests == local_before, f"the unwatched model was asked on {night}"
            assert not run_schedule(defs, instance, "watched_nights", when + timedelta(hours=1))  # not a watched model's hour

        assert set(warehouse.table("completions", {"model": "local"})["response_model"]) == {"scripted"}  # every completion keeps the server's words
        nights = warehouse.table("nights", order_by="task, night")
        assert nights.height == 2 * (STABLE_NIGHTS + 2) and set(nights["fingerprints"][: STABLE_NIGHTS]) == {"fp_a"}
        stable = nights.filter(pl.col("night") <= "2026-01-21")
        false_alarms = stable["drifted"].sum()
        # The stated rate: at most DEFAULT_ALPHA alarms per task-night on a stable model (bench/drift_false_alarms.py
        # measures it); 2 tasks × 19 comparable nights allow 1.
        assert DEFAULT_ALPHA == 0.01 and false_alarms <= 1, stable.filter(pl.col("drifted")).select("task", "night", "drift_summary")
        drop_night, change_night = "2026-01-22", "2026-01-23"
        dropped = _alarms(warehouse, drop_night)
        assert set(dropped["task"]) == {"arithmetic"}, dropped.select("task", "scope", "metric", "detail")
        moved = dropped.filter((pl.col("metric") == "accuracy") & (pl.col("scope") == "task"))
        assert moved.height >= 1 and all(-0.16 < s < -0.04 and hi < 0 for s, hi in zip(moved["shift"], moved["shift_high"], strict=True))
        assert not checks[(drop_night, "hosted|arithmetic")].passed and checks[(drop_night, "hosted|boolean")].passed
        assert "accuracy" in (checks[(drop_night, "hosted|arithmetic")].description or "")
        changed = _alarms(warehouse, change_night).filter(pl.col("metric") == "server")
        assert set(changed["task"]) == {"arithmetic", "boolean"} and all("fp_a → fp_b" in d for d in changed["detail"])
        assert not checks[(change_night, "hosted|boolean")].passed and "fp_b" in (checks[(change_night, "hosted|boolean")].description or "")
        canary = warehouse.table("canary_answers", {"model": "hosted", "task": "boolean", "night": change_night})
        assert canary.height == 2 * ITEMS and set(canary["system_fingerprint"]) == {"fp_b"} and set(canary["response_model"]) == {"hosted-2026-01-01"}
        assert set(canary["served_metadata_json"]) == {'{"provider": "ScriptedCloud"}'}


def test_a_night_over_its_max_requests_is_refused_before_anything_is_sent(tmp_path):
    lab = make_lab(tmp_path, {})
    with ScriptedServer(NightlyServer(lab)) as server:
        lab = make_lab(tmp_path / "lab", {"hosted": scripted_model(server.base_url, watch={"tasks": ["boolean"], "n": 100, "max_requests": 150})})
        with dg.instance_for_test() as instance, pytest.raises(StepsFailed) as refused:
            watch_night(lab, instance, "hosted", "2026-02-01")
    assert server.completion_requests == 0
    message = str(refused.value)
    assert "models.hosted.watch.max_requests is 150" in message and "200 requests for 200 items" in message


class FreshAware(Oracle):
    """Answers the published items right with probability `published`, items of the fresh sets of `salt` with
    probability `fresh` (a memorising server: 1.0 and 0.6; an honest one: the same rate for both)."""

    def __init__(self, settings: Settings, salt: str, sets: int, published: float, fresh: float):
        super().__init__(settings, items_per_point=32)
        self.published_questions = set(self.known)
        for name, spec in load_manifolds(settings.tasks_dir).items():
            for point in select_points(spec, scripted_watch_selection()):
                for k in range(sets):
                    for generated in generate_point(spec.task, name, point.params, fresh_seed(spec.doc.global_seed, salt, k), 32):
                        self.known.setdefault(generated.item.question, Known(name, point.params, generated.index, generated.item.answer, generated.item.metadata))
        self.rates = {True: published, False: fresh}

    def __call__(self, body):
        known = self.lookup(body)
        question = body["messages"][-1]["content"].rsplit("\n\n", 1)[0]
        right = draw(question) < self.rates[question in self.published_questions]
        return Reply(content=f"ANSWER: {known.answer if right else _wrong(known)}")


def scripted_watch_selection():
    from rs_dagster.models.registry import Watch

    return Watch(tiers=["easy"]).selection


def test_rs_eval_fresh_seeds_reports_the_memorisation_gap_of_a_memorising_server_and_not_of_an_honest_one(tmp_path):
    lab = make_lab(tmp_path, {}, ("boolean",))
    memorising, honest = FreshAware(lab, "s1", 2, 1.0, 0.6), FreshAware(lab, "s1", 2, 0.7, 0.7)
    with ScriptedServer(memorising) as mem_server, ScriptedServer(honest) as honest_server:
        suite = {"tasks": ["boolean"], "tiers": ["easy"], "precision": 32}
        lab = make_lab(tmp_path / "lab", {"memoriser": scripted_model(mem_server.base_url, suite=suite),
                                          "honest": scripted_model(honest_server.base_url, suite=suite)}, ("boolean",))
        result = subprocess.run([*RS, "eval", "--model", "memoriser,honest", "--fresh-seeds", "2", "--salt", "s1"], env={**os.environ, **lab_env(lab)},
                                capture_output=True, text=True, timeout=600, cwd=PACKAGE_ROOT)
        assert result.returncode == 0, result.stderr[-3000:]
    warehouse = Warehouse.from_settings(lab)
    for model, server in (("memoriser", mem_server), ("honest", honest_server)):
        canary = warehouse.table("canary_answers", {"model": model})
        # published: the evaluation's 64 items (2 points × 32), answered from the cache; fresh: 2 sets at the same points, each
        # distinct question asked once (a question also published, or drawn by both sets, is not asked twice)
        assert canary.filter(pl.col("item_set") == "published").height == 64 and canary.filter(pl.col("from_cache")).height >= 64
        assert server.completion_requests == 64 + canary.filter(pl.col("item_set") != "published")["request_hash"].n_unique()
        assert canary.filter(pl.col("item_set") != "published").height > 100
    assert "Memorisation gap" in result.stdout and "FLAGGED" in result.stdout
    gaps = {r["model"]: r for r in warehouse.table("memorisation").iter_rows(named=True)}
    memoriser, fair = gaps["memoriser"], gaps["honest"]
    assert memoriser["night"] == fair["night"] == "eval:s1" and memoriser["tier"] == "easy"
    assert memoriser["flagged"] and memoriser["gap_low"] > 0.2 and memoriser["accuracy_published"] == 1.0
    assert not fair["flagged"] and fair["gap_low"] < 0 < fair["gap_high"]
    assert memoriser["n_published"] == 64 and memoriser["n_fresh"] == warehouse.table("canary_answers", {"model": "memoriser"}).height - 64


def test_rs_watch_asks_one_night_prints_its_cost_and_nights_and_asks_it_once(tmp_path):
    server = NightlyServer(make_lab(tmp_path, {}))
    with ScriptedServer(server) as scripted:
        lab = make_lab(tmp_path / "lab", {"hosted": scripted_model(scripted.base_url, watch={**WATCH, "tasks": ["boolean"], "n": 20})})
        env = {**os.environ, **lab_env(lab)}

        def rs_watch(*args: str) -> subprocess.CompletedProcess:
            return subprocess.run([*RS, "watch", "--model", "hosted", *args], env=env, capture_output=True, text=True, timeout=600, cwd=PACKAGE_ROOT)

        first = rs_watch("--night", "2026-02-01")
        assert first.returncode == 0, first.stderr[-3000:]
        assert scripted.completion_requests == 40  # 2 easy points × 20 items
        again = rs_watch("--night", "2026-02-01")
        assert again.returncode == 0 and scripted.completion_requests == 40  # a night already asked is not asked again
        bad = rs_watch("--night", "yesterday")
    assert "Nights of hosted" in first.stdout and "2026-02-01" in first.stdout and "fp_a" in first.stdout
    assert "40 requests for 40 items" in first.stdout + first.stderr  # the night's cost, shown before it is sent
    assert bad.returncode == 2 and "--night 'yesterday': expected a date YYYY-MM-DD" in bad.stderr and "Traceback" not in bad.stderr


def test_an_error_never_replaces_a_stored_canary_answer(tmp_path):
    server = NightlyServer(make_lab(tmp_path, {}))
    failing = {"on": False}

    def respond(body):
        if failing["on"] and draw(body["messages"][-1]["content"]) < 0.5:
            return Reply(status=503)
        return server(body)

    with ScriptedServer(respond) as scripted:
        lab = make_lab(tmp_path / "lab", {"hosted": scripted_model(scripted.base_url, max_retries=0, watch={**WATCH, "tasks": ["boolean"], "n": 20})})
        with dg.instance_for_test() as instance:
            watch_night(lab, instance, "hosted", "2026-02-01")
            (lab.cache_dir / "responses.sqlite3").unlink()  # the cache pruned: the night's answers are asked again
            failing["on"] = True
            watch_night(lab, instance, "hosted", "2026-02-01")
    canary = Warehouse.from_settings(lab).table("canary_answers", {"model": "hosted", "night": "2026-02-01"})
    assert canary.height == 40 and canary["error"].is_null().all()  # about half failed the second time; none replaced an answer
