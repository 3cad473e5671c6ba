"""The seams of the code: domain packages never import Dagster (defs/ is the only Dagster wiring), and a
run reads the lab's configuration (task manifolds, models.yaml) once, however many assets it runs."""

import ast
from pathlib import Path

import dagster as dg
import pandera.polars as pa
import polars as pl
import pytest
from helpers import Oracle, make_lab, scripted_model

import rs_dagster
import rs_dagster.defs.resources
from rs_dagster.definitions import build_definitions
from rs_dagster.defs.automation import EVALUATION_ASSETS
from rs_dagster.defs.partitions import model_task_key
from rs_dagster.defs.resources import EvalScope
from rs_dagster.errors import SchemaError
from rs_dagster.orchestrate import evaluate
from rs_dagster.storage.warehouse import Warehouse
from rs_dagster.testing.scripted_server import ScriptedServer

PACKAGE = Path(rs_dagster.__file__).parent
WIRING = {"defs", "definitions.py", "orchestrate.py", "cli.py", "run_queue.py", "dead_runs.py"}
"""The layers above the domain packages: they may import Dagster (run_queue and dead_runs are plugged
into the Dagster instance: its run coordinator, and the check of runs whose process died)."""


class Toy(pa.DataFrameModel):
    model: str
    task: str
    n: int = pa.Field(ge=0)


def imported_modules(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(), filename=str(path))
    names = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
    return names


def test_domain_packages_never_import_dagster_nor_the_wiring():
    domain = [path for path in sorted(PACKAGE.rglob("*.py")) if path.relative_to(PACKAGE).parts[0] not in WIRING]
    assert len(domain) > 40 and PACKAGE / "storage" / "warehouse.py" in domain
    offenders = {}
    for path in domain:
        bad = {
            name for name in imported_modules(path)
            if name.split(".")[0] == "dagster" or name.startswith(("rs_dagster.defs", "rs_dagster.definitions", "rs_dagster.orchestrate", "rs_dagster.cli"))
        }
        if bad:
            offenders[str(path.relative_to(PACKAGE))] = sorted(bad)
    assert offenders == {}


def test_one_run_reads_the_configuration_once(tmp_path, instance, monkeypatch):
    probe = make_lab(tmp_path / "probe", {})
    with ScriptedServer(Oracle(probe, items_per_point=4)) as server:
        settings = make_lab(tmp_path / "lab", {"alpha": scripted_model(server.base_url)}, tasks=("arithmetic",))
        scope = EvalScope(tiers=["easy"], precision="4")
        evaluate(settings, instance, ["alpha"], ["arithmetic"], scope)

        calls = {"manifolds": 0, "models": 0}

        def counted(name, load):
            def wrapper(*args, **kwargs):
                calls[name] += 1
                return load(*args, **kwargs)
            return wrapper

        monkeypatch.setattr(rs_dagster.defs.resources, "load_each_manifold", counted("manifolds", rs_dagster.defs.resources.load_each_manifold))
        monkeypatch.setattr(rs_dagster.defs.resources, "load_each_model", counted("models", rs_dagster.defs.resources.load_each_model))
        defs = build_definitions(settings, scope)
        for run in range(2):  # each run its own resource instance: the second reads again, once
            result = dg.materialize(
                list(defs.assets), selection=EVALUATION_ASSETS, partition_key=model_task_key("alpha", "arithmetic"),
                instance=instance, resources=defs.resources,
            )
            assert result.success
            assert calls == {"manifolds": run + 1, "models": run + 1}, f"{len(EVALUATION_ASSETS)} assets in one run"


# --- the warehouse seam -------------------------------------------------------------------------------------


def test_a_table_reads_by_keys_in_order_and_a_missing_one_reads_empty(tmp_path):
    warehouse = Warehouse(tmp_path / "rs.duckdb")
    assert warehouse.table("comparisons").is_empty()
    frame = pl.DataFrame({"model": ["b", "a", "a"], "task": ["t", "t", "u"], "n": [2, 1, 3]})
    warehouse.replace_tables({"toy": (Toy, frame)})
    assert warehouse.table("toy", order_by="model, task")["n"].to_list() == [1, 3, 2]
    assert warehouse.table("toy", {"model": "a"}, order_by="n DESC")["task"].to_list() == ["u", "t"]
    assert warehouse.columns("toy") == [("model", "VARCHAR"), ("task", "VARCHAR"), ("n", "BIGINT")]
    assert warehouse.table("comparisons").is_empty() and warehouse.count_rows("comparisons", {"model": "a"}) == 0  # the file exists now


def test_key_filters_are_literals_that_quote_any_value(tmp_path):
    """Reads by key inline their values (binding parameters imports pandas); a quote is data, never SQL."""
    warehouse = Warehouse(tmp_path / "rs.duckdb")
    frame = pl.DataFrame({"model": ["it's", "x' OR '1'='1", "plain"], "task": ["t", "t", "t"], "n": [1, 2, 3]})
    warehouse.replace_tables({"toy": (Toy, frame)})
    assert warehouse.table("toy", {"model": "it's"})["n"].to_list() == [1]
    assert warehouse.table("toy", {"model": "x' OR '1'='1"})["n"].to_list() == [2]
    assert warehouse.count_rows("toy", {"model": "nobody' OR '1'='1"}) == 0
    assert warehouse.has_table("toy") and not warehouse.has_table("toy' OR '1'='1")


def test_replace_tables_writes_all_or_nothing(tmp_path):
    warehouse = Warehouse(tmp_path / "rs.duckdb")
    good = pl.DataFrame({"model": ["a"], "task": ["t"], "n": [1]})
    warehouse.replace_tables({"first": (Toy, good), "second": (Toy, good)})
    with pytest.raises(SchemaError, match=r"second\.n"):
        warehouse.replace_tables({"first": (Toy, good.with_columns(n=pl.Series([5]))), "second": (Toy, good.with_columns(n=pl.Series([-1])))})
    assert warehouse.table("first").equals(good) and warehouse.table("second").equals(good)
