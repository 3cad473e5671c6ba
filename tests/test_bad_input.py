"""Bad input gets an error naming the file, key or value and what was expected; nothing stored is lost."""

import polars as pl
import pytest
from helpers import Oracle, make_lab, scripted_model

from rs_dagster.defs.resources import EvalScope
from rs_dagster.errors import InputError, RsError, SchemaError, UnknownNameError
from rs_dagster.models.registry import load_models
from rs_dagster.orchestrate import evaluate
from rs_dagster.storage import schemas
from rs_dagster.storage.warehouse import Warehouse
from rs_dagster.tasks.manifold import load_manifold
from rs_dagster.testing.scripted_server import ScriptedServer


def _manifold(tmp_path, text):
    path = tmp_path / "broken.yaml"
    path.write_text(text)
    return path


def test_malformed_manifold_names_file_key_and_expected_type(tmp_path):
    path = _manifold(tmp_path, "generator: arithmetic\ngrid: {terms: 5}\ntiers: {easy: {}, medium: {}, hard: {}}\n")
    with pytest.raises(InputError) as error:
        load_manifold(path)
    message = str(error.value)
    assert str(path) in message and "'grid.terms'" in message and "list" in message.lower()


def test_manifold_point_outside_the_generator_domain_is_rejected(tmp_path):
    path = _manifold(tmp_path, "generator: arithmetic\ngrid: {terms: [2], depth: [3]}\ntiers: {easy: {}, medium: {}, hard: {}}\n")
    with pytest.raises(InputError, match=r"tiers.easy point .*depth 3 needs at least 5 terms"):
        load_manifold(path)


def test_manifold_with_unknown_generator_or_missing_tier(tmp_path):
    with pytest.raises(InputError, match=r"key 'generator': unknown task generator 'arith'; known task generators: .*arithmetic"):
        load_manifold(_manifold(tmp_path, "generator: arith\ngrid: {terms: [3]}\ntiers: {easy: {}, medium: {}, hard: {}}\n"))
    with pytest.raises(InputError, match=r"missing tier\(s\) \['hard'\]"):
        load_manifold(_manifold(tmp_path, "generator: arithmetic\ngrid: {terms: [3], depth: [0]}\ntiers: {easy: {}, medium: {}}\n"))
    with pytest.raises(InputError, match="not valid YAML"):
        load_manifold(_manifold(tmp_path, "generator: [unclosed\n"))


def test_bad_model_entry_names_the_model_and_key(tmp_path):
    settings = make_lab(tmp_path, {"m": {"base_url": "localhost:8000", "served_model": "x"}})
    with pytest.raises(InputError, match=r"models.m: key 'base_url': .*expected an http\(s\) URL"):
        load_models(settings)
    settings.models_file.write_text("models:\n  m: {base_url: 'http://127.0.0.1:1/v1', served_model: x, sampler: nope}\n")
    with pytest.raises(UnknownNameError, match=r"unknown sampler 'nope'; known samplers: demo, greedy, reasoning"):
        load_models(settings)


def test_unknown_task_or_model_lists_the_known_ones(tmp_path, instance):
    settings = make_lab(tmp_path, {"m": scripted_model("http://127.0.0.1:9/v1")})
    with pytest.raises(UnknownNameError, match="unknown model 'nope'; known models: m"):
        evaluate(settings, instance, ["nope"], ["arithmetic"])
    with pytest.raises(UnknownNameError, match="unknown task 'nope'; known tasks: arithmetic, boolean"):
        evaluate(settings, instance, ["m"], ["nope"])


def test_unreachable_endpoint_records_nothing_and_keeps_what_was_stored(tmp_path, instance):
    probe = make_lab(tmp_path / "probe", {})
    with ScriptedServer(Oracle(probe, items_per_point=4)) as server:
        settings = make_lab(tmp_path / "lab", {"m": scripted_model(server.base_url)})
        evaluate(settings, instance, ["m"], ["arithmetic"], EvalScope(tiers=["easy"], precision="4"))
    warehouse = Warehouse(settings.db_path)
    before = warehouse.query("SELECT * FROM completions ORDER BY request_hash")
    # The server is gone now; point a new sampler at it so every request is a fresh one.
    settings.models_file.write_text(settings.models_file.read_text().replace("sampler: greedy", "sampler: demo"))
    with pytest.raises(RsError, match=r"cannot reach the endpoint http://127\.0\.0\.1:(\d+)/v1: connection refused \(127\.0\.0\.1:\1\)"):
        evaluate(settings, instance, ["m"], ["arithmetic"], EvalScope(tiers=["easy"], precision="4"))
    after = warehouse.query("SELECT * FROM completions ORDER BY request_hash")
    assert after.equals(before)


def test_invalid_frame_never_lands_and_the_error_names_column_and_rule(tmp_path):
    warehouse = Warehouse(tmp_path / "w.duckdb")
    good = pl.DataFrame({"task": ["t"], "spec_version": ["0123456789abcdef"], "generator": ["g"], "generator_version": ["1"],
                         "manifold_yaml": ["x"], "surfaces_json": ["[]"], "projections_json": ["[]"], "tiers_json": ["[]"], "n_points": [3], "dagster_run_id": ["r"]})
    warehouse.replace_partition("task_specs", schemas.TaskSpecs, good, {"task": "t"})
    bad = good.with_columns(pl.lit(0).alias("n_points"), pl.lit("short").alias("spec_version"))
    with pytest.raises(SchemaError) as error:
        warehouse.replace_partition("task_specs", schemas.TaskSpecs, bad, {"task": "t"})
    assert "task_specs.n_points" in str(error.value) and "greater_than_or_equal_to(1)" in str(error.value)
    assert "task_specs.spec_version" in str(error.value) and "nothing was written" in str(error.value)
    assert warehouse.query("SELECT * FROM task_specs").equals(good)
    with pytest.raises(SchemaError, match=r"unknown|not in DataFrameSchema|column 'extra'"):
        warehouse.replace_partition("task_specs", schemas.TaskSpecs, good.with_columns(extra=pl.lit(1)), {"task": "t"})
    with pytest.raises(SchemaError, match="refusing to write outside the partition"):
        warehouse.replace_partition("task_specs", schemas.TaskSpecs, good, {"task": "other"})
