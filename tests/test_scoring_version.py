"""The scoring version over real HTTP and a real DuckDB file: a parser or scorer change (SCORING_VERSION bumped)
re-scores the stored completions without asking the endpoint again, into rows of its own beside the earlier
version's, and every reader of "the score" reads the current version only; rows stored before the column
existed are version "1" and stay."""

import dataclasses
import json

import dagster as dg
import polars as pl
import pytest
from helpers import Oracle, make_lab, scripted_model

from rs_dagster.definitions import build_definitions
from rs_dagster.defs.resources import EvalScope
from rs_dagster.explore.views import point_view, task_view
from rs_dagster.models.registry import get_model, load_models
from rs_dagster.orchestrate import evaluate
from rs_dagster.scoring import outcomes
from rs_dagster.storage import schemas
from rs_dagster.storage.explore import ExplorerReads
from rs_dagster.storage.reads import scored_for_comparison, trace_samples
from rs_dagster.storage.warehouse import Warehouse
from rs_dagster.tasks.manifold import load_manifolds
from rs_dagster.testing.scripted_server import ScriptedServer

SCOPE = EvalScope(tiers=["easy"], precision="16")
PARTITION = "scripted|arithmetic"
SCORE = ["parsed_answer", "parse_rule", "outcome", "flexible_outcome"]
"""What a scoring change may change in a row."""


@pytest.fixture
def lab(tmp_path):
    oracle = Oracle(make_lab(tmp_path / "probe", {}, tasks=("arithmetic",)), items_per_point=16)
    with ScriptedServer(oracle) as server:
        yield make_lab(tmp_path / "lab", {"scripted": scripted_model(server.base_url)}, tasks=("arithmetic",)), server


def _materialize(settings, instance, selection: list[str]) -> dg.ExecuteInProcessResult:
    defs = build_definitions(settings, SCOPE)
    result = dg.materialize(list(defs.assets), selection=selection, partition_key=PARTITION, instance=instance, resources=defs.resources)
    assert result.success
    checks = [e for e in result.get_asset_check_evaluations() if e.check_name == "stored_rows_match_schema"]
    assert checks and all(e.passed for e in checks), [e.description for e in checks]
    return result


def _scored(warehouse: Warehouse) -> pl.DataFrame:
    return warehouse.query("SELECT * FROM scored_results").sort("scoring_version", "test_case_id", "sample_index")


def _versions(settings) -> tuple[str, str]:
    model = get_model(load_models(settings), "scripted")
    return model.version, load_manifolds(settings.tasks_dir)["arithmetic"].version


def test_a_new_scoring_version_rescores_the_stored_completions_without_asking_again(lab, instance, monkeypatch):
    settings, server = lab
    evaluate(settings, instance, ["scripted"], ["arithmetic"], SCOPE)
    warehouse = Warehouse(settings.db_path)
    sent = server.completion_requests
    assert sent == 32  # the easy tier's 2 points × 16 items
    before = _scored(warehouse)
    first = outcomes.SCORING_VERSION
    assert before["scoring_version"].to_list() == [first] * 32

    # A code change: the parser no longer reads \boxed{} (a bare model of "reads some answers differently"),
    # released as a new scoring version.
    spec = load_manifolds(settings.tasks_dir)["arithmetic"]
    task_class = type(spec.task)
    original = task_class.parse

    def variant(self, text, metadata):
        parsed = original(self, text, metadata)
        return dataclasses.replace(parsed, value=None, rule=None) if parsed.rule == "boxed" else parsed

    monkeypatch.setattr(task_class, "parse", variant)
    monkeypatch.setattr(outcomes, "SCORING_VERSION", "test-next")
    _materialize(settings, instance, ["scored_results", "points"])
    assert server.completion_requests == sent  # nothing asked again

    after = _scored(warehouse)
    kept = after.filter(pl.col("scoring_version") == first)
    assert kept.equals(before)  # the earlier version's rows, untouched (run ids included)
    new = after.filter(pl.col("scoring_version") == "test-next")
    completions = warehouse.query("SELECT c.*, t.metadata_json FROM completions c JOIN test_cases t USING (task, test_case_id)")
    assert new.height == completions.height == 32
    assert new.select("test_case_id", "sample_index", "request_hash").sort(pl.all()).equals(
        completions.select("test_case_id", "sample_index", "request_hash").sort(pl.all()))

    # The rows whose score changed are exactly the completions the variant reads differently.
    reads_differently = {
        (row["test_case_id"], row["sample_index"])
        for row in completions.iter_rows(named=True)
        if original(spec.task, row["answer_text"], json.loads(row["metadata_json"])) != variant(spec.task, row["answer_text"], json.loads(row["metadata_json"]))
    }
    paired = kept.join(new, on=["test_case_id", "sample_index", "request_hash"], suffix="_new")
    changed = paired.filter(pl.any_horizontal(pl.col(c).ne_missing(pl.col(f"{c}_new")) for c in SCORE))
    assert {(r["test_case_id"], r["sample_index"]) for r in changed.iter_rows(named=True)} == reads_differently
    assert 0 < len(reads_differently) < 32 and set(changed["parse_rule"]) == {"boxed"}
    assert set(changed["outcome_new"]) == {"unparsed"} and changed["parsed_answer_new"].is_null().all()
    same = [c for c in before.columns if c not in ("scoring_version", "dagster_run_id")]
    assert new.select(same).join(changed.select("test_case_id", "sample_index"), on=["test_case_id", "sample_index"], how="anti").sort(
        "test_case_id", "sample_index").equals(kept.select(same).join(
            changed.select("test_case_id", "sample_index"), on=["test_case_id", "sample_index"], how="anti").sort("test_case_id", "sample_index"))

    # points (and every other reader of "the score") count the new version only.
    points = warehouse.query("SELECT * FROM points ORDER BY point_id")
    expected = new.group_by("point_id").agg(
        n=pl.len(), correct=(pl.col("outcome") == "correct").sum(), unparsed=(pl.col("outcome") == "unparsed").sum(),
        flexible_correct=(pl.col("flexible_outcome") == "correct").sum(),
    ).sort("point_id")
    assert points.select(expected.columns).equals(expected.cast(dict(points.select(expected.columns).schema)))
    assert points["correct"].sum() < (kept["outcome"] == "correct").sum()  # the boxed correct answers no longer count
    model_version, spec_version = _versions(settings)
    assert trace_samples(warehouse, "scripted", "arithmetic", model_version, spec_version).height == 32
    assert scored_for_comparison(warehouse, {"arithmetic": spec}, ["scripted"]).height == 32
    reads = ExplorerReads(settings.db_path)
    assert reads.sample_totals()["total"].sum() == 32
    point = points["point_id"][0]
    page = reads.samples("scripted", "arithmetic", point, 0, 100)
    assert page.height == points["n"][0] and sorted(page["outcome"]) == sorted(new.filter(pl.col("point_id") == point)["outcome"])

    # The same version again writes nothing; the earlier version can be read by its scoring_version.
    _materialize(settings, instance, ["scored_results"])
    assert _scored(warehouse).equals(after)
    by_version = warehouse.query("SELECT scoring_version, count(*) AS n FROM scored_results GROUP BY ALL ORDER BY ALL")
    assert by_version.rows() == sorted([(first, 32), ("test-next", 32)])


def test_rows_scored_before_the_column_existed_read_as_version_1_and_stay(lab, instance):
    settings, server = lab
    evaluate(settings, instance, ["scripted"], ["arithmetic"], SCOPE)
    warehouse = Warehouse(settings.db_path)
    sent = server.completion_requests
    # The tables as the code before scoring_version and `ambiguous` left them.
    with warehouse.connect() as con:
        con.execute("ALTER TABLE scored_results DROP COLUMN scoring_version")
        con.execute("ALTER TABLE points DROP COLUMN ambiguous")
        for column in ("ambiguous", "hazard_ambiguous", "incidence_ambiguous"):
            con.execute(f"ALTER TABLE hazard DROP COLUMN {column}")
    legacy = warehouse.query("SELECT * FROM scored_results").sort("test_case_id", "sample_index")
    model_version, spec_version = _versions(settings)

    # Readers of the current score find nothing current in such a table, and fail on nothing.
    assert trace_samples(warehouse, "scripted", "arithmetic", model_version, spec_version).is_empty()
    spec = load_manifolds(settings.tasks_dir)["arithmetic"]
    assert scored_for_comparison(warehouse, {"arithmetic": spec}, ["scripted"]).is_empty()
    reads = ExplorerReads(settings.db_path)
    point = warehouse.query("SELECT point_id FROM points ORDER BY point_id LIMIT 1")["point_id"][0]
    assert reads.samples("scripted", "arithmetic", point, 0, 100).is_empty()
    with reads.session() as session:
        view = point_view(session, "scripted", "arithmetic", point)
        task_view(session, "arithmetic")  # its hazard chart, from a table without the ambiguous columns
    counts = next(b for b in view["blocks"] if b.get("name") == "point")
    assert {item["key"]: item["value"] for item in counts["items"]}["ambiguous"] == 0

    _materialize(settings, instance, ["scored_results", "points", "hazard"])
    assert server.completion_requests == sent
    scored = warehouse.query("SELECT * FROM scored_results")
    old = scored.filter(pl.col("scoring_version") == outcomes.FIRST_SCORING_VERSION).sort("test_case_id", "sample_index")
    assert old.drop("scoring_version").equals(legacy)  # every legacy row kept, read as version "1"
    current = scored.filter(pl.col("scoring_version") == outcomes.SCORING_VERSION)
    assert current.height == legacy.height == 32 and scored.height == 64
    points = warehouse.query("SELECT * FROM points")
    assert points["n"].sum() == 32 and points["ambiguous"].to_list() == [0, 0]
    hazard = warehouse.query("SELECT * FROM hazard WHERE tier = 'all'")
    assert hazard["samples"][0] == 32 and (hazard["incidence_ambiguous"] == 0).all()
    assert "scoring_version" in schemas.ScoredResults.to_schema().columns
