"""The dbt-like SQL layer over a real DuckDB file: ref() resolution, and the contents of surfaces,
projections and leaderboard checked against numbers computed here by hand from a small hand-built pair
of `points` and `task_specs` tables (2 models × 1 task, a 2×3 surface, a 4-value numeric projection and
a 3-value categorical one, three tiers). The SQL runs through run_sql_model, the asset's own code path;
the report's difficulty curves are drawn from the result."""

from __future__ import annotations

import itertools
import json
import random
from pathlib import Path

import dagster as dg
import duckdb
import polars as pl
import pytest
import yaml
from helpers import make_lab

from rs_dagster.definitions import build_definitions
from rs_dagster.defs.sql_models import column_schema
from rs_dagster.errors import SchemaError
from rs_dagster.explore import views
from rs_dagster.report.charts import CURVE_Y_TITLE, FAILING_SHARE, difficulty_curve, surface_heatmap
from rs_dagster.settings import PACKAGE_ROOT
from rs_dagster.stats.intervals import excess_over_chance, wilson_interval
from rs_dagster.storage.sql_models import READ_SCHEMAS, SQL_SCHEMAS, compile_sql, refs, run_model, run_sql_model
from rs_dagster.storage.warehouse import Warehouse
from rs_dagster.tasks.base import canonical_json, point_id

SQL_DIR = PACKAGE_ROOT / "dbt_like_sql"
TASK = "toy"
MODELS = ("alpha", "beta")
# The grid lists `size` out of numeric order and `style` out of alphabetical order: the SQL must sort
# size numerically and keep style in the manifold's order.
MANIFOLD = {
    "generator": TASK,
    "grid": {"size": [30, 7, 365, 36500], "style": ["plain", "nested", "mixed"], "depth": [1, 2]},
    "tiers": {
        "easy": {"size": [7], "style": ["plain"], "depth": [1]},
        "medium": {"size": [30], "style": ["plain"], "depth": [1, 2]},
        "hard": {"size": [365, 36500], "style": ["plain", "nested"], "depth": [1]},
    },
    "surfaces": [{"name": "depth_by_style", "x": "depth", "y": "style", "fixed": {"size": 30}}],
    "projections": [
        {"name": "size", "axis": "size", "fixed": {"style": "plain", "depth": 1}},
        {"name": "style", "axis": "style", "fixed": {"size": 30, "depth": 2}},
    ],
}
SIZES_IN_ORDER = ["7", "30", "365", "36500"]
STYLES_IN_ORDER = ["plain", "nested", "mixed"]
ALL_TRUNCATED = ("beta", {"size": 36500, "style": "plain", "depth": 1})  # nothing answered: accuracy is null


def memberships() -> dict[str, dict]:
    """Every point a tier, surface or projection names, with the names (as the manifold loader does)."""
    members: dict[str, dict] = {}

    def add(params: dict, kind: str, name: str) -> None:
        entry = members.setdefault(canonical_json(params), {"params": params, "tiers": [], "surfaces": [], "projections": []})
        entry[kind].append(name)

    def product(axes: dict) -> list[dict]:
        full = {axis: axes.get(axis, values) for axis, values in MANIFOLD["grid"].items()}
        return [dict(zip(full, combo)) for combo in itertools.product(*full.values())]

    for tier, axes in MANIFOLD["tiers"].items():
        for params in product(axes):
            add(params, "tiers", tier)
    for surface in MANIFOLD["surfaces"]:
        for params in product({**{k: [v] for k, v in surface["fixed"].items()}}):
            add(params, "surfaces", surface["name"])
    for projection in MANIFOLD["projections"]:
        for params in product({k: [v] for k, v in projection["fixed"].items()}):
            add(params, "projections", projection["name"])
    return members


def point_row(model: str, params: dict, member: dict) -> dict:
    """One `points` row with made-up counts and every derived column computed as the points asset does."""
    rng = random.Random(f"{model}|{canonical_json(params)}")
    n = rng.randint(12, 40)
    truncated, errors = rng.randint(0, 3), rng.randint(0, 2)
    if (model, params) == ALL_TRUNCATED:
        truncated, errors = n, 0
    answered = n - truncated - errors
    correct = rng.randint(0, answered)
    incorrect = rng.randint(0, answered - correct)
    ambiguous = rng.randint(0, answered - correct - incorrect)  # hedges ("5 or 7"): answered, never correct
    unparsed = answered - correct - incorrect - ambiguous
    flexible_correct = correct + rng.randint(0, unparsed)
    g = 0.25 if params["depth"] == 2 else 0.0
    row = {
        "model": model, "task": TASK, "point_id": point_id(TASK, params), "params_json": canonical_json(params),
        "tiers": member["tiers"], "surfaces": member["surfaces"], "projections": member["projections"],
        "n": n, "answered": answered, "correct": correct, "incorrect": incorrect, "unparsed": unparsed, "ambiguous": ambiguous,
        "truncated": truncated, "errors": errors, "budget_forced": 0, "flexible_correct": flexible_correct,
        "guess_chance": g, "truncation_rate": truncated / n, "mean_completion_tokens": 100.0 + n, "mean_reasoning_tokens": None,
    }
    measured = dict.fromkeys(["accuracy", "ci_low", "ci_high", "flexible_accuracy", "flexible_ci_low", "flexible_ci_high",
                              "format_compliance", "excess_accuracy", "excess_ci_low", "excess_ci_high"])
    if answered:
        low, high = wilson_interval(correct, answered)
        flexible_low, flexible_high = wilson_interval(flexible_correct, answered)
        measured.update(
            accuracy=correct / answered, ci_low=low, ci_high=high,
            flexible_accuracy=flexible_correct / answered, flexible_ci_low=flexible_low, flexible_ci_high=flexible_high,
            format_compliance=(correct + incorrect) / answered, excess_accuracy=excess_over_chance(correct / answered, g),
            excess_ci_low=excess_over_chance(low, g), excess_ci_high=excess_over_chance(high, g),
        )
    return {**row, **measured}


def hand_built_points() -> pl.DataFrame:
    rows = [point_row(model, m["params"], m) for model in MODELS for m in memberships().values()]
    lists = {c: pl.List(pl.String) for c in ("tiers", "surfaces", "projections")}
    return pl.DataFrame(rows, schema_overrides={**lists, "mean_reasoning_tokens": pl.Float64}, infer_schema_length=None)


def write_inputs(db_path: Path) -> pl.DataFrame:
    """The hand-built `points` and `task_specs` tables, written with plain DuckDB SQL; returns the points.
    task_specs says the `hard` tier has one more point than was measured (a tier evaluated in part)."""
    points = hand_built_points()
    tier_sizes = {tier: sum(tier in m["tiers"] for m in memberships().values()) for tier in MANIFOLD["tiers"]}
    tier_sizes["hard"] += 1
    task_specs = pl.DataFrame({
        "task": [TASK], "spec_version": ["0" * 16], "generator": [TASK], "generator_version": ["1"],
        "manifold_yaml": [yaml.safe_dump(MANIFOLD, sort_keys=False)],
        "surfaces_json": [canonical_json([{k: s[k] for k in ("name", "x", "y")} for s in MANIFOLD["surfaces"]])],
        "projections_json": [canonical_json([{k: p[k] for k in ("name", "axis")} for p in MANIFOLD["projections"]])],
        "tiers_json": [canonical_json([{"name": tier, "points": count} for tier, count in tier_sizes.items()])],
        "n_points": [len(memberships())], "dagster_run_id": ["hand-built"],
    })
    with duckdb.connect(str(db_path)) as con:
        for name, frame in (("points", points), ("task_specs", task_specs)):
            con.register("incoming", frame)
            con.execute(f'CREATE OR REPLACE TABLE "{name}" AS SELECT * FROM incoming')
            con.unregister("incoming")
    return points


def run_models(db_path: Path) -> dict[str, pl.DataFrame]:
    with duckdb.connect(str(db_path)) as con:
        counts = {name: run_sql_model(con, SQL_DIR / f"{name}.sql") for name in ("surfaces", "projections", "leaderboard")}
        tables = {name: pl.from_arrow(con.sql(f'SELECT * FROM "{name}"').to_arrow_table()) for name in counts}
    for name, frame in tables.items():
        assert frame.height == counts[name], name
    return tables


@pytest.fixture
def built(tmp_path):
    db_path = tmp_path / "rs.duckdb"
    points = write_inputs(db_path)
    return db_path, points, run_models(db_path)


def interval(correct: int, answered: int) -> tuple[float | None, float | None]:
    return wilson_interval(correct, answered) if answered else (None, None)


# --- ref() and compilation -------------------------------------------------------------------------------


def test_refs_are_read_from_the_sql_and_compile_to_quoted_table_names():
    sql = "SELECT * FROM {{ ref('points') }} p JOIN {{ref(\"task_specs\")}} t USING (task) JOIN {{  ref( 'points' )  }} q USING (task)"
    assert refs(sql) == ["points", "task_specs"]
    assert compile_sql(sql) == 'SELECT * FROM "points" p JOIN "task_specs" t USING (task) JOIN "points" q USING (task)'
    assert refs("SELECT 1") == [] and compile_sql("SELECT 1") == "SELECT 1"
    expected = {"surfaces": ["points", "task_specs"], "projections": ["points", "task_specs"], "leaderboard": ["points", "task_specs"]}
    for name, deps in expected.items():
        sql = (SQL_DIR / f"{name}.sql").read_text()
        assert refs(sql) == deps, name
        assert "{{" not in compile_sql(sql) and "ref(" not in compile_sql(sql), name


def test_every_sql_model_has_a_schema_and_its_asset_reads_its_deps_from_the_sql(tmp_path):
    settings = make_lab(tmp_path / "lab", {})
    specs = {spec.key.to_user_string(): spec for spec in build_definitions(settings).resolve_all_asset_specs()}
    for path in sorted(SQL_DIR.glob("*.sql")):
        assert path.stem in SQL_SCHEMAS, path
        assert set(refs(path.read_text())) <= set(READ_SCHEMAS), path  # the tables it reads are brought up to their schema
        assert sorted(d.asset_key.to_user_string() for d in specs[path.stem].deps) == refs(path.read_text())
        declared = specs[path.stem].metadata["dagster/column_schema"].schema
        assert [c.name for c in declared.columns] == list(SQL_SCHEMAS[path.stem].to_schema().columns)
    assert "projections" in {d.asset_key.to_user_string() for d in specs["report"].deps}


def test_a_model_run_on_the_warehouse_reports_its_rows_columns_and_head(built):
    db_path, _, tables = built
    run = run_model(Warehouse(db_path), SQL_DIR / "leaderboard.sql", head=3)
    assert run.rows == tables["leaderboard"].height
    assert [name for name, _ in run.columns] == list(SQL_SCHEMAS["leaderboard"].to_schema().columns)
    assert run.head.equals(tables["leaderboard"].head(3))


# --- contents ---------------------------------------------------------------------------------------------


def test_surfaces_hold_every_cell_once_with_the_points_numbers(built):
    _, points, tables = built
    surfaces = tables["surfaces"]
    on_surface = points.filter(pl.col("surfaces").list.contains("depth_by_style"))
    assert on_surface.height == 2 * 6
    cells = sorted(surfaces.select("model", "x", "y").rows())
    assert cells == sorted((m, str(d), s) for m in MODELS for d in (1, 2) for s in STYLES_IN_ORDER)  # each exactly once
    assert set(surfaces["surface"]) == {"depth_by_style"}
    assert set(surfaces.select("x_axis", "y_axis").rows()) == {("depth", "style")}
    by_point = {(r["model"], r["point_id"]): r for r in points.iter_rows(named=True)}
    for row in surfaces.iter_rows(named=True):
        point = by_point[(row["model"], row["point_id"])]
        params = json.loads(point["params_json"])
        assert (row["x"], row["y"]) == (str(params["depth"]), params["style"])
        assert row["accuracy"] == pytest.approx(point["correct"] / point["answered"])
        assert (row["ci_low"], row["ci_high"]) == pytest.approx(wilson_interval(point["correct"], point["answered"]))
        for column in ("n", "answered", "correct", "flexible_accuracy", "format_compliance", "excess_accuracy", "truncation_rate"):
            assert row[column] == pytest.approx(point[column]), column
        assert row["x_numeric"] == float(row["x"]) and row["y_numeric"] is None
        assert row["x_rank"] == int(row["x"])  # depth 1, 2
        assert row["y_rank"] == STYLES_IN_ORDER.index(row["y"]) + 1  # the manifold's order, not the alphabet's


def test_projections_hold_every_point_once_in_axis_order(built):
    _, points, tables = built
    projections = tables["projections"]
    assert projections.group_by("model", "projection").len().sort("model", "projection").rows() == [
        (m, p, k) for m in MODELS for p, k in (("size", 4), ("style", 3))
    ]
    assert projections.select("model", "projection", "axis_value").is_unique().all()
    for model in MODELS:
        curve = lambda name, model=model: projections.filter((pl.col("model") == model) & (pl.col("projection") == name))  # noqa: E731
        size = curve("size").sort("axis_rank")
        assert size["axis_value"].to_list() == SIZES_IN_ORDER  # 7 < 30 < 365 < 36500, although the grid lists 30 first
        assert size["axis_numeric"].to_list() == [7.0, 30.0, 365.0, 36500.0] and size["axis_rank"].to_list() == [1, 2, 3, 4]
        assert set(size["axis"]) == {"size"}
        style = curve("style").sort("axis_rank")
        assert style["axis_value"].to_list() == STYLES_IN_ORDER and style["axis_numeric"].is_null().all()
        # The table itself is stored in that order (ORDER BY model, task, projection, axis_rank).
        assert projections.filter(pl.col("model") == model)["axis_value"].to_list() == SIZES_IN_ORDER + STYLES_IN_ORDER
    by_point = {(r["model"], r["point_id"]): r for r in points.iter_rows(named=True)}
    for row in projections.iter_rows(named=True):
        point = by_point[(row["model"], row["point_id"])]
        assert row["projection"] in point["projections"]
        low, high = interval(point["correct"], point["answered"])
        if point["answered"]:
            assert row["accuracy"] == pytest.approx(point["correct"] / point["answered"])
            assert (row["ci_low"], row["ci_high"]) == pytest.approx((low, high))
            assert row["flexible_accuracy"] == pytest.approx(point["flexible_correct"] / point["answered"])
            assert row["format_compliance"] == pytest.approx((point["correct"] + point["incorrect"]) / point["answered"])
        else:
            assert row["accuracy"] is None and row["ci_low"] is None and row["ci_high"] is None
        for column in ("n", "answered", "correct", "truncation_rate", "mean_completion_tokens"):
            assert row[column] == pytest.approx(point[column]), column
    empty = projections.filter(pl.col("answered") == 0)
    assert empty.select("model", "axis_value").rows() == [("beta", "36500")]


def test_leaderboard_pools_counts_per_tier(built):
    _, points, tables = built
    board = tables["leaderboard"]
    assert sorted(board.select("model", "tier").rows()) == sorted((m, t) for m in MODELS for t in ("easy", "medium", "hard"))
    for row in board.iter_rows(named=True):
        tier = points.filter((pl.col("model") == row["model"]) & pl.col("tiers").list.contains(row["tier"]))
        correct, answered, n = tier["correct"].sum(), tier["answered"].sum(), tier["n"].sum()
        assert (row["points"], row["samples"], row["answered"], row["correct"]) == (tier.height, n, answered, correct)
        assert row["tier_points"] == tier.height + (row["tier"] == "hard")  # the unmeasured hard point
        assert row["accuracy"] == pytest.approx(correct / answered)  # pooled, not a mean of the points' accuracies
        assert (row["ci_low"], row["ci_high"]) == pytest.approx(wilson_interval(correct, answered))
        assert row["flexible_accuracy"] == pytest.approx(tier["flexible_correct"].sum() / answered)
        assert (row["flexible_ci_low"], row["flexible_ci_high"]) == pytest.approx(wilson_interval(tier["flexible_correct"].sum(), answered))
        assert row["format_compliance"] == pytest.approx((correct + tier["incorrect"].sum()) / answered)
        assert (row["unparsed"], row["ambiguous"]) == (tier["unparsed"].sum(), tier["ambiguous"].sum())
        assert row["ambiguous_share"] == pytest.approx(tier["ambiguous"].sum() / answered)
        g = (tier["guess_chance"] * tier["n"]).sum() / n
        assert row["guess_chance"] == pytest.approx(g)
        assert row["excess_accuracy"] == pytest.approx(excess_over_chance(correct / answered, g))
        assert row["truncation_rate"] == pytest.approx(tier["truncated"].sum() / n)
        assert row["errors"] == tier["errors"].sum()
    medium = board.filter(pl.col("tier") == "medium")
    assert (medium["points"] == 2).all() and (medium["guess_chance"] > 0).all()
    # Pooling differs from averaging the points' accuracies whenever their denominators differ.
    hard_beta = points.filter((pl.col("model") == "beta") & pl.col("tiers").list.contains("hard"))
    assert hard_beta["answered"].min() == 0 and hard_beta["accuracy"].null_count() == 1


def test_task_specs_written_before_tiers_json_existed_read_as_unknown_tier_sizes(built):
    """A lab's task_specs rows from before the column was added (no tiers_json) do not fail the models:
    the column is added, NULL in those rows, and the leaderboard's tier sizes read as unknown."""
    db_path, _, tables = built
    with duckdb.connect(str(db_path)) as con:
        con.execute("ALTER TABLE task_specs DROP COLUMN tiers_json")
    board = run_model(Warehouse(db_path), SQL_DIR / "leaderboard.sql", head=1000).head
    assert board.height == tables["leaderboard"].height
    assert board["tier_points"].null_count() == board.height
    assert board.drop("tier_points").sort("model", "tier").equals(tables["leaderboard"].drop("tier_points").sort("model", "tier"))
    with duckdb.connect(str(db_path)) as con:
        assert con.execute("SELECT tiers_json FROM task_specs").fetchall() == [(None,)]


def test_points_written_before_ambiguous_existed_read_as_no_hedges(built):
    """A lab's points rows from before the `ambiguous` outcome (no column) do not fail the models: the column is
    added, 0 in those rows (nothing was scored ambiguous then), and the leaderboard counts no hedge for them."""
    db_path, _, tables = built
    assert tables["leaderboard"]["ambiguous"].sum() > 0  # the hand-built points have hedges
    with duckdb.connect(str(db_path)) as con:
        con.execute("ALTER TABLE points DROP COLUMN ambiguous")
    board = run_model(Warehouse(db_path), SQL_DIR / "leaderboard.sql", head=1000).head.sort("model", "tier")
    assert board.height == tables["leaderboard"].height
    assert (board["ambiguous"] == 0).all() and (board["ambiguous_share"].drop_nulls() == 0).all()
    kept = [c for c in board.columns if c not in ("ambiguous", "ambiguous_share")]
    assert board.select(kept).equals(tables["leaderboard"].sort("model", "tier").select(kept))
    with duckdb.connect(str(db_path)) as con:
        assert con.execute("SELECT DISTINCT ambiguous FROM points").fetchall() == [(0,)]


# --- validation --------------------------------------------------------------------------------------------


def test_a_result_that_fails_its_schema_names_column_and_rule_and_keeps_the_old_table(built):
    db_path, _, tables = built
    with duckdb.connect(str(db_path)) as con:
        con.execute("UPDATE points SET accuracy = 1.5 WHERE model = 'alpha' AND list_contains(projections, 'size')")
        with pytest.raises(SchemaError) as failure:
            run_sql_model(con, SQL_DIR / "projections.sql")
        kept = pl.from_arrow(con.sql("SELECT * FROM projections").to_arrow_table())
    message = str(failure.value)
    assert "projections.accuracy: less_than_or_equal_to(1.0)" in message
    assert "projections.None: ci_low <= accuracy <= ci_high" in message or "ci_low <= accuracy <= ci_high" in message
    assert kept.equals(tables["projections"])  # nothing landed

    with duckdb.connect(str(db_path)) as con:  # a task listed twice would repeat every cell
        con.execute("INSERT INTO task_specs SELECT * FROM task_specs")
        with pytest.raises(SchemaError, match=r"surfaces\..*multiple_fields_uniqueness"):
            run_sql_model(con, SQL_DIR / "surfaces.sql")


def _failure(result: dg.ExecuteInProcessResult) -> str:
    for event in result.all_events:
        if event.is_step_failure:
            error = event.step_failure_data.error
            return (error.cause or error).message
    return ""


def test_the_assets_report_row_count_and_column_schema_and_fail_on_a_bad_table(tmp_path, instance):
    settings = make_lab(tmp_path / "lab", {})
    write_inputs(settings.db_path)
    defs = build_definitions(settings)
    selection = ["surfaces", "projections", "leaderboard"]
    result = dg.materialize(list(defs.assets), selection=selection, instance=instance, resources=defs.resources)
    assert result.success
    with duckdb.connect(str(settings.db_path)) as con:
        for name in selection:
            metadata = instance.get_latest_materialization_event(dg.AssetKey(name)).asset_materialization.metadata
            assert metadata["dagster/row_count"].value == con.execute(f'SELECT count(*) FROM "{name}"').fetchone()[0] > 0
            schema = metadata["dagster/column_schema"].schema
            assert schema == column_schema(name, [(c, t) for c, t, *_ in con.execute(f'DESCRIBE "{name}"').fetchall()])
            assert [c.name for c in schema.columns] == list(SQL_SCHEMAS[name].to_schema().columns)
            types = dict(con.execute(f'SELECT column_name, data_type FROM information_schema.columns WHERE table_name = \'{name}\'').fetchall())
            assert {c.name: c.type for c in schema.columns} == types
    accuracy = next(c for c in schema.columns if c.name == "accuracy")
    assert accuracy.constraints.nullable and accuracy.description

    with duckdb.connect(str(settings.db_path)) as con:
        con.execute("UPDATE points SET truncated = 2 * n WHERE model = 'beta'")  # truncation_rate 2
    failed = dg.materialize(list(defs.assets), selection=["leaderboard"], instance=instance, resources=defs.resources, raise_on_error=False)
    assert not failed.success
    assert "leaderboard.truncation_rate: less_than_or_equal_to(1.0)" in _failure(failed)


# --- report -------------------------------------------------------------------------------------------------


def charts_of(blocks: list[dict]) -> dict[str, dict]:
    """The blocks of each option of an explorer section's choices, by the option's label."""
    found: dict[str, dict] = {}
    for block in blocks:
        if block["type"] == "choice":
            found.update({option["label"]: option["blocks"] for option in block["options"]})
    return found


def notes_of(blocks: list[dict]) -> list[str]:
    found = [b["text"] for b in blocks if b["type"] == "note"]
    return found + [n for b in blocks if b["type"] == "choice" for o in b["options"] for n in notes_of(o["blocks"])]


def test_report_draws_one_difficulty_curve_per_task_and_projection(built):
    _, _, tables = built
    curves = charts_of(views._curves(TASK, tables["projections"]))
    assert set(curves) == {"size (size)", "style (style)"}
    assert all(blocks[0]["type"] == "chart" and blocks[0]["models"] == list(MODELS) for blocks in curves.values())
    surfaces = charts_of(views._surfaces(TASK, tables["surfaces"]))
    assert [b["name"] for b in surfaces["depth × style (depth_by_style)"]] == [f"surface-depth_by_style-{m}" for m in MODELS]


def test_curve_charts_order_numeric_and_categorical_axes(built):
    projections = built[2]["projections"]
    size = difficulty_curve(projections.filter(pl.col("projection") == "size"), "size", "toy / size").to_dict()
    style = difficulty_curve(projections.filter(pl.col("projection") == "style"), "style", "toy / style").to_dict()
    for spec, axis in ((size, "size"), (style, "style")):
        band, line, flexible, chance = (layer["encoding"] for layer in spec["layer"])
        assert flexible["y"]["field"] == "flexible_accuracy" and spec["layer"][2]["mark"]["strokeDash"] == [5, 3]
        curve = projections.filter(pl.col("projection") == axis)
        assert spec["layer"][3]["data"]["values"] == [{"chance": pytest.approx(curve["guess_chance"].mean())}]
        assert chance["y"]["field"] == "chance" and spec["layer"][3]["mark"]["type"] == "rule"
        assert line["y"]["field"] == "accuracy" and line["y"]["title"] == CURVE_Y_TITLE and line["y"]["scale"]["domain"] == [0, 1]
        assert band["y"]["field"] == "ci_low" and band["y2"]["field"] == "ci_high" and band["y"]["scale"]["domain"] == [0, 1]
        for encoding in (band, line):
            assert encoding["x"]["title"] == axis and encoding["color"]["field"] == "model" and encoding["color"]["type"] == "nominal"
        drawn = pl.DataFrame(spec["data"]["values"])
        assert drawn["accuracy"].is_not_null().all()  # beta's all-truncated point has no accuracy to draw
        assert drawn.height == projections.filter((pl.col("projection") == axis) & pl.col("accuracy").is_not_null()).height
    size_x, style_x = size["layer"][1]["encoding"]["x"], style["layer"][1]["encoding"]["x"]
    assert (size_x["field"], size_x["type"], size_x["scale"]["type"]) == ("axis_numeric", "quantitative", "log")  # 7 .. 36500
    assert size_x["axis"]["values"] == [7.0, 30.0, 365.0, 36500.0]
    assert size["layer"][0]["mark"]["type"] == "area"
    assert (style_x["field"], style_x["type"], style_x["sort"]) == ("axis_value", "ordinal", STYLES_IN_ORDER)
    assert style["layer"][0]["mark"]["type"] == "rule"


def test_report_says_why_when_there_are_no_surfaces_or_curves(built):
    _, _, tables = built
    (no_surfaces,), (no_curves,) = notes_of(views._surfaces(TASK, pl.DataFrame())), notes_of(views._curves(TASK, pl.DataFrame()))
    assert no_surfaces.startswith(f"No difficulty surfaces for {TASK}") and no_curves.startswith(f"No difficulty curves for {TASK}")
    assert no_curves.count(". ") == 0 and no_surfaces.count(". ") == 0  # one sentence each

    # A curve whose every point has nothing answered is named, not dropped.
    lost = tables["projections"].filter((pl.col("model") == "beta") & (pl.col("axis_value") == "36500"))
    blocks = views._curves(TASK, lost)
    assert charts_of(blocks)["size (size)"][0]["type"] == "note"
    assert notes_of(blocks) == [f"No curve for {TASK} / size: none of its evaluated points has an answered sample (every sample was truncated or an error)."]


def test_surface_cells_show_their_interval_and_outline_failing_cells(built):
    surfaces = built[2]["surfaces"]
    cells = surfaces.filter(pl.col("model") == MODELS[0])
    spec = surface_heatmap(cells, "x", "y", "toy").to_dict()
    drawn = pl.DataFrame(spec["data"]["values"]) if "values" in spec.get("data", {}) else pl.DataFrame(spec["layer"][0]["data"]["values"])
    expected = cells.select(
        ((pl.col("ci_high") - pl.col("ci_low")) / 2).alias("half_width"),
        (pl.col("truncation_rate") + pl.col("errors") / pl.col("n") > FAILING_SHARE).alias("failing"),
    )
    assert drawn["half_width"].to_list() == pytest.approx(expected["half_width"].to_list(), nan_ok=True)
    assert drawn["failing"].to_list() == expected["failing"].to_list() and any(expected["failing"])
    outline = spec["layer"][3]
    assert outline["mark"]["filled"] is False and outline["transform"] == [{"filter": "datum.failing"}]
    assert spec["layer"][2]["encoding"]["text"]["field"] == "half_width_label"
    assert all(label.startswith("±") for label in drawn["half_width_label"].drop_nulls())
