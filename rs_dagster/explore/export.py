"""The explorer exported: one folder (index.html at its root) holding the front end, the Vega bundle and
every view's JSON as data/*.js scripts, so it opens from file:// with no server and no network request
(a page opened from file:// may load scripts but may not fetch() files).

The export is incremental. Views come in groups: a task's (its task view, point views and sample views),
the leaderboard's, each comparison's and each watched model's nights. While a group is built the Snapshot
records what it read (the task's points, spectra, samples..., rs_dagster.explore.queries.Read), and
data/manifest.json keeps, per group, those reads with their hash, its routes, files and notes. The next
export rebuilds a group only when one of its reads hashes otherwise (or it is new, or a file of it is
missing); the others keep their files. A manifest written by other code (any change to rs_dagster's source,
polars or altair), with other parameters, missing or unreadable means a full export.

Files are named after their group and the hash of what they hold, so a rebuilt file never overwrites one
that data/index.js lists: the new files are written first, then index.js and the manifest are replaced,
then the files nothing lists are removed. An interrupted export leaves the previous one readable."""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
import re
import shutil
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import partial
from importlib.metadata import version
from pathlib import Path
from typing import Any

from rs_dagster.explore import nights, views
from rs_dagster.explore.app import DAGSTER_URL, STATIC, default_cache, vega_bundle
from rs_dagster.explore.blocks import for_browser
from rs_dagster.explore.queries import LabData, Read, Snapshot
from rs_dagster.freshness import code_fingerprint
from rs_dagster.settings import Settings
from rs_dagster.storage.warehouse import Warehouse

SAMPLES_PER_POINT = 100
"""Samples of each point the export holds (the first ones, in item order); `rs explore` shows them all."""

FORMAT = 1
"""The layout of data/manifest.json; another one (or none) means a full export."""

MANIFEST = "manifest.json"

Built = list[tuple[str, str, views.View]]
"""A group's views: (route, the route whose file holds it, view). A sample is written with its point:
thousands of one-sample files took longer to write than all the views to build."""


@dataclass
class Export:
    """What was written: the folder, the routes exported, the views that had to say why they are empty,
    and how many views were built anew (`rebuilt`, in the groups `rebuilt_groups`) or kept from the
    previous export (`kept`)."""

    folder: Path
    routes: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    rebuilt: int = 0
    kept: int = 0
    rebuilt_groups: list[str] = field(default_factory=list)


def code_digest() -> str:
    """What builds the views: the lab's code as freshness fingerprints it (every file of the package and the
    SQL models), and the polars and altair versions (row hashes and Vega-Lite specs may change with them)."""
    return f"{code_fingerprint(Settings.from_env().sql_dir)} polars {version('polars')} altair {version('altair')}"


def _single(route: str, build: Callable[[], views.View]) -> Built:
    return [(route, route, build())]


def _groups(data: Snapshot, dagster_url: str, samples_per_point: int) -> dict[str, Callable[[], Built]]:
    """Every group of views the lab has data for, by the route of its first view, with what builds it from
    `data`; a point's samples up to the cap. All are built from one Snapshot: each table read once, not a
    query per view."""

    def task_group(task: str) -> Built:
        head = views.route("task", task)
        built: Built = [(head, head, views.task_view(data, task))]
        for model, point_id in data.points(task).select("model", "point_id").rows():
            point = views.route("point", model, task, point_id)
            built.append((point, point, views.point_view(data, model, task, point_id, page_size=samples_per_point)))
        for sample in data.first_samples(task).iter_rows(named=True):
            key = views.route("sample", sample["model"], task, sample["test_case_id"], sample["sample_index"])
            built.append((key, views.route("point", sample["model"], task, sample["point_id"]), views.sample_view_of(sample, dagster_url)))
        return built

    groups: dict[str, Callable[[], Built]] = {"/": partial(_single, "/", partial(views.leaderboard_view, data))}
    groups.update((views.route("task", task), partial(task_group, task)) for task in data.tasks())
    models = data.models()
    for i, model_a in enumerate(models):
        for model_b in models[i + 1:]:
            compare = views.route("compare", model_a, model_b)
            groups[compare] = partial(_single, compare, partial(views.compare_view, data, model_a, model_b))
    watched = data.nights()
    for model in watched["model"].unique(maintain_order=True) if not watched.is_empty() else []:
        nights_route = views.route("nights", model)
        groups[nights_route] = partial(_single, nights_route, partial(nights.nights_view, data, model))
    return groups


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


def _fingerprint(data: Snapshot, reads: list[Read]) -> str:
    return hashlib.blake2b(json.dumps([[*read, data.digest(read)] for read in reads]).encode(), digest_size=16).hexdigest()


def _slug(group: str) -> str:
    """A file name's readable part: `/task/arithmetic` → `task-arithmetic`."""
    return re.sub(r"[^A-Za-z0-9_.-]+", "-", group).strip("-.")[:40] or "leaderboard"


def _previous(data: Path, header: dict[str, Any]) -> dict[str, Any]:
    """The groups of the previous export into `data` made with `header`; none when there is no such export."""
    try:
        manifest = json.loads((data / MANIFEST).read_text())
        return manifest["groups"] if manifest.get("header") == header and isinstance(manifest["groups"], dict) else {}
    except (OSError, ValueError, KeyError, TypeError):
        return {}


def _kept(data: Path, group: dict[str, Any], snapshot: Snapshot) -> bool:
    """Whether a group of the previous export still holds: every file there and every read hashing as it did."""
    try:
        return (all((data.parent / name).is_file() for name in {name for _, name in group["routes"]})
                and _fingerprint(snapshot, [tuple(read) for read in group["reads"]]) == group["fingerprint"])
    except (KeyError, TypeError, ValueError):
        return False


def _replace(path: Path, text: str) -> None:
    """Write `path` whole or not at all: a reader sees the old file or the new one."""
    partial = path.with_name(path.name + ".partial")
    partial.write_text(text)
    os.replace(partial, path)


def export(
    source: Path | Warehouse, folder: Path, dagster_url: str = DAGSTER_URL, samples_per_point: int = SAMPLES_PER_POINT, cache_dir: Path | None = None
) -> Export:
    """Write the exported explorer into `folder` (its data/ holds this export's files only; other files
    there stay), rebuilding only the groups of views whose reads changed since the previous export there;
    the Vega bundle comes from `cache_dir` (default: the lab's cache folder beside its DuckDB file). Two
    exports into one folder (a report run beside another) take turns: each reads the lab after the other wrote."""
    folder.mkdir(parents=True, exist_ok=True)
    with open(folder / ".export.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        return _export(source, folder, dagster_url, samples_per_point, cache_dir)


def _export(source: Path | Warehouse, folder: Path, dagster_url: str, samples_per_point: int, cache_dir: Path | None) -> Export:
    snapshot = LabData(source).snapshot(samples_per_point)
    header = {"format": FORMAT, "code": code_digest(), "dagster_url": dagster_url, "samples_per_point": samples_per_point}
    data = folder / "data"
    data.mkdir(parents=True, exist_ok=True)
    previous = _previous(data, header)
    groups: dict[str, Any] = {}
    result = Export(folder)
    for key, build in _groups(snapshot, dagster_url, samples_per_point).items():
        old = previous.get(key)
        if old is not None and _kept(data, old, snapshot):
            groups[key] = old
            result.kept += len(old["routes"])
        else:
            with snapshot.reading() as reads:
                built = build()
            ordered = sorted(reads)
            fingerprint = _fingerprint(snapshot, ordered)
            routes: list[list[str]] = []
            notes: list[str] = []
            scripts: dict[str, list[str]] = {}
            files: dict[str, str] = {}
            for route, holder, view in built:
                if holder not in files:
                    digest = hashlib.blake2b(f"{holder}\0{fingerprint}\0{json.dumps(header)}".encode(), digest_size=8).hexdigest()
                    files[holder] = f"data/{_slug(key)}-{digest}.js"
                name = files[route] = files[holder]
                payload = json.dumps(for_browser(view), separators=(",", ":"), default=str)
                scripts.setdefault(name, []).append(f"window.RS_DATA[{json.dumps(route)}]={payload};\n")
                routes.append([route, name])
                notes.extend(f"{view['title']}: {text}" for text in _notes(view["blocks"]))
            for name, lines in scripts.items():
                _replace(folder / name, "".join(lines))
            groups[key] = {"fingerprint": fingerprint, "reads": [list(read) for read in ordered], "routes": routes, "notes": notes}
            result.rebuilt += len(routes)
            result.rebuilt_groups.append(key)
        result.routes.extend(route for route, _ in groups[key]["routes"])
        result.notes.extend(groups[key]["notes"])
    listed = {route: name for group in groups.values() for route, name in group["routes"]}
    index = {
        "files": listed,
        "generated": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "note": f"the export holds the first {samples_per_point} samples of each grid point",
    }
    _replace(data / "index.js", f"window.RS_DATA={{}};window.RS_EXPORT={json.dumps(index)};\n")
    _replace(data / MANIFEST, json.dumps({"header": header, "groups": groups}, separators=(",", ":")))
    names = {"index.js", MANIFEST, *(name.removeprefix("data/") for name in set(listed.values()))}
    for stale in data.iterdir():
        if stale.name not in names:
            shutil.rmtree(stale) if stale.is_dir() and not stale.is_symlink() else stale.unlink()
    for static in ("app.js", "style.css"):
        shutil.copy(STATIC / static, folder / static)
    (folder / "vega.js").write_text(vega_bundle(cache_dir or default_cache(source)))
    page = (STATIC / "index.html").read_text().replace("<!--rs-export-->", '<script src="data/index.js"></script>')
    (folder / "index.html").write_text(page)
    return result
