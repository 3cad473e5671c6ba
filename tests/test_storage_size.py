"""The DuckDB file holds what is stored, not the history of its rewrites: evaluating the same scope again
leaves its size flat, and a partition rewritten again and again keeps it in proportion."""

import os

import pandera.polars as pa
import polars as pl
from helpers import Oracle, make_lab, scripted_model

from rs_dagster.defs.resources import EvalScope
from rs_dagster.orchestrate import evaluate
from rs_dagster.storage.warehouse import Warehouse
from rs_dagster.testing.scripted_server import ScriptedServer

BLOCK = 262_144  # DuckDB's block size


class Rows(pa.DataFrameModel):
    part: str
    id: int
    text: str


def _rows(part: str, version: int) -> pl.DataFrame:
    return pl.DataFrame({"part": part, "id": range(5000), "text": [f"{version}:{i}:" + "x" * 200 for i in range(5000)]})


def test_the_same_scope_ten_times_leaves_the_file_size_flat(tmp_path, instance):
    oracle = Oracle(make_lab(tmp_path / "probe", {}), items_per_point=4)
    with ScriptedServer(oracle) as server:
        settings = make_lab(tmp_path / "lab", {"scripted": scripted_model(server.base_url)})
        sizes = []
        for _ in range(10):
            evaluate(settings, instance, ["scripted"], ["arithmetic", "boolean"], EvalScope(tiers=["easy"], precision="4"))
            sizes.append(os.path.getsize(settings.db_path))
    assert server.completion_requests == 2 * 2 * 4
    # DuckDB allocates the file in 256 KiB blocks, and a re-run may take or give back a few of them
    # (duckdb 1.5: the size wobbles by 1-3 blocks around a level); what must not happen is a trend.
    rerun = sizes[1:]
    assert max(rerun) - min(rerun) <= 4 * BLOCK, f"the file size swung over the re-runs: {sizes}"
    assert sum(rerun[-3:]) / 3 <= sum(rerun[:3]) / 3 + BLOCK, f"the file grew over the re-runs: {sizes}"


def test_a_partition_rewritten_keeps_the_file_in_proportion(tmp_path):
    warehouse = Warehouse(tmp_path / "rs.duckdb")
    for part in "abcd":
        warehouse.replace_partition("rows", Rows, _rows(part, 0), {"part": part})
    warehouse.release()  # sizes of the file as a command leaves it: checkpointed
    stored = os.path.getsize(warehouse.path)
    for version in range(1, 11):
        warehouse.replace_partition("rows", Rows, _rows("a", version), {"part": "a"})
        warehouse.upsert_rows("rows", Rows, _rows("b", 0), {"part": "b"}, "id")  # unchanged rows: nothing rewritten
    warehouse.release()
    assert warehouse.count_rows("rows") == 4 * 5000
    assert warehouse.query("SELECT DISTINCT split_part(text, ':', 1) AS v FROM rows WHERE part = 'a'")["v"].to_list() == ["10"]
    assert os.path.getsize(warehouse.path) <= 1.6 * stored, (stored, os.path.getsize(warehouse.path))
