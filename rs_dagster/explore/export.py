"""The explorer exported: one folder (index.html at its root) holding the front end, the Vega bundle and
every view's JSON as data/*.js scripts, so it opens from file:// with no server and no network request
(a page opened from file:// may load scripts but may not fetch() files)."""

from __future__ import annotations

import json
import shutil
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from rs_dagster.explore import nights, views
from rs_dagster.explore.app import DAGSTER_URL, STATIC, default_cache, vega_bundle
from rs_dagster.explore.blocks import for_browser
from rs_dagster.explore.queries import LabData
from rs_dagster.storage.warehouse import Warehouse

SAMPLES_PER_POINT = 100
"""Samples of each point the export holds (the first ones, in item order); `rs explore` shows them all."""


@dataclass
class Export:
    """What was written: the folder, the routes exported, and the views that had to say why they are empty."""

    folder: Path
    routes: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)


def _views(lab: LabData, dagster_url: str, samples_per_point: int) -> dict[str, tuple[str, views.View]]:
    """Every route of the explorer the lab has data for, with the route whose file holds it (a sample is
    written with its point: thousands of one-sample files took longer to write than all the views to
    build) and its view; a point's samples up to the cap. All are built from one Snapshot: each table
    read once, not a query per view."""
    data = lab.snapshot(samples_per_point)
    built: dict[str, tuple[str, views.View]] = {"/": ("/", views.leaderboard_view(data))}
    for task in data.tasks():
        built[views.route("task", task)] = (views.route("task", task), views.task_view(data, task))
        for model, point_id in data.points(task).select("model", "point_id").rows():
            point = views.route("point", model, task, point_id)
            built[point] = (point, views.point_view(data, model, task, point_id, page_size=samples_per_point))
    for sample in data.details.iter_rows(named=True):
        key = views.route("sample", sample["model"], sample["task"], sample["test_case_id"], sample["sample_index"])
        built[key] = (views.route("point", sample["model"], sample["task"], sample["point_id"]), views.sample_view_of(sample, dagster_url))
    models = data.models()
    for i, model_a in enumerate(models):
        for model_b in models[i + 1:]:
            compare = views.route("compare", model_a, model_b)
            built[compare] = (compare, views.compare_view(data, model_a, model_b))
    watched = data.nights()
    for model in watched["model"].unique(maintain_order=True) if not watched.is_empty() else []:
        nights_route = views.route("nights", model)
        built[nights_route] = (nights_route, nights.nights_view(data, model))
    return built


def _notes(blocks: list[views.Block]) -> list[str]:
    """The no-data sentences of a view, options of its choices included."""
    found = []
    for block in blocks:
        if block["type"] == "note":
            found.append(block["text"])
        elif block["type"] == "choice":
            for option in block["options"]:
                found.extend(_notes(option["blocks"]))
    return found


def export(
    source: Path | Warehouse, folder: Path, dagster_url: str = DAGSTER_URL, samples_per_point: int = SAMPLES_PER_POINT, cache_dir: Path | None = None
) -> Export:
    """Write the exported explorer into `folder` (its data/ is replaced; other files there stay); the Vega
    bundle comes from `cache_dir` (default: the lab's cache folder beside its DuckDB file)."""
    built = _views(LabData(source), dagster_url, samples_per_point)
    folder.mkdir(parents=True, exist_ok=True)
    data = folder / "data"
    shutil.rmtree(data, ignore_errors=True)
    data.mkdir()
    files: dict[str, str] = {}
    scripts: dict[str, list[str]] = {}
    result = Export(folder)
    for route, (holder, view) in built.items():
        name = files[route] = files.get(holder) or f"data/v{len(scripts)}.js"
        payload = json.dumps(for_browser(view), separators=(",", ":"), default=str)
        scripts.setdefault(name, []).append(f"window.RS_DATA[{json.dumps(route)}]={payload};\n")
        result.routes.append(route)
        result.notes.extend(f"{view['title']}: {text}" for text in _notes(view["blocks"]))
    for name, lines in scripts.items():
        (folder / name).write_text("".join(lines))
    manifest = {
        "files": files,
        "generated": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "note": f"the export holds the first {samples_per_point} samples of each grid point",
    }
    (data / "index.js").write_text(f"window.RS_DATA={{}};window.RS_EXPORT={json.dumps(manifest)};\n")
    for static in ("app.js", "style.css"):
        shutil.copy(STATIC / static, folder / static)
    (folder / "vega.js").write_text(vega_bundle(cache_dir or default_cache(source)))
    page = (STATIC / "index.html").read_text().replace("<!--rs-export-->", '<script src="data/index.js"></script>')
    (folder / "index.html").write_text(page)
    return result
