"""Test support: a temporary lab (inputs + state folders) and an oracle that answers generated items
with a known accuracy per grid point, for the scripted loopback server."""

from __future__ import annotations

import math
import os
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from rs_dagster.settings import PACKAGE_ROOT, Settings
from rs_dagster.tasks.generation import generate_point
from rs_dagster.tasks.manifold import load_manifolds
from rs_dagster.testing.scripted_server import Reply

GOLDEN = (math.sqrt(5) - 1) / 2
RS = [sys.executable, "-c", "from rs_dagster.cli import main; main()"]


def lab_env(lab: Settings) -> dict[str, str]:
    """The environment that points `rs` at a lab."""
    return {"RS_HOME": str(lab.home), "RS_INPUTS": str(lab.inputs), "DAGSTER_HOME": str(lab.dagster_home), "COLUMNS": "200"}


def rs_process(args: list[str], env: dict[str, str], **popen: Any) -> subprocess.Popen:
    """`rs ARGS` as a user runs it, in its own process."""
    return subprocess.Popen([*RS, *args], env={**os.environ, **env}, cwd=PACKAGE_ROOT, text=True, **popen)


def make_lab(root: Path, models: dict[str, dict[str, Any]], tasks: tuple[str, ...] = ("arithmetic", "boolean")) -> Settings:
    """A lab under `root` with the repository's templates and samplers, the given task manifolds and
    a models.yaml holding `models`."""
    inputs = root / "inputs"
    (inputs / "tasks").mkdir(parents=True)
    for task in tasks:
        shutil.copy(PACKAGE_ROOT / "assets" / "tasks" / f"{task}.yaml", inputs / "tasks" / f"{task}.yaml")
    shutil.copytree(PACKAGE_ROOT / "assets" / "templates", inputs / "templates")
    shutil.copytree(PACKAGE_ROOT / "assets" / "samplers", inputs / "samplers")
    (inputs / "models.yaml").write_text(yaml.safe_dump({"models": models}))
    settings = Settings(home=root / ".rs", inputs=inputs, db_path=root / ".rs" / "rs.duckdb", dagster_home=root / ".rs" / "dagster")
    settings.ensure_dirs()
    return settings


def scripted_model(base_url: str, **overrides: Any) -> dict[str, Any]:
    return {"base_url": base_url, "served_model": "scripted", "sampler": "greedy", "concurrency": 8, "max_retries": 2, **overrides}


@dataclass(frozen=True)
class Known:
    task: str
    params: dict[str, Any]
    index: int
    answer: str
    metadata: dict[str, Any]


def true_accuracy(task: str, params: dict[str, Any]) -> float:
    """The scripted model's accuracy at a grid point: it gets worse with depth and length."""
    length = params.get("terms", params.get("length", 2))
    return max(0.05, min(0.95, 0.95 - 0.15 * params["depth"] - 0.01 * length))


def _wrong(known: Known) -> str:
    if known.task == "boolean":
        from rs_dagster.tasks.boolean import NOTATIONS

        true, false = NOTATIONS[known.metadata["notation"]]
        return false if known.answer == true else true
    return str(int(known.answer) + 7)


_STYLES = [
    "Let me work through it. First 12 and 7 give 19, then 3.\n\nANSWER: {x}",
    "Step 1: compute the inner part -> 5.\nStep 2: combine -> 40.\nSo the final answer is \\boxed{{{x}}}.",
    "**Answer:** {x}",
    "Working: 2, 4, 8.\n\n{x}",
]


class Oracle:
    """Maps each question it knows to its item and answers right with probability true_accuracy,
    decided by a low-discrepancy sequence over the item index so measured accuracy tracks it closely."""

    def __init__(self, settings: Settings, items_per_point: int = 128):
        self.known: dict[str, Known] = {}
        for name, spec in load_manifolds(settings.tasks_dir).items():
            for point in spec.points():
                for generated in generate_point(spec.task, name, point.params, spec.doc.global_seed, items_per_point):
                    self.known[generated.item.question] = Known(name, point.params, generated.index, generated.item.answer, generated.item.metadata)

    def lookup(self, body: dict[str, Any]) -> Known:
        content = body["messages"][-1]["content"]
        return self.known[content.rsplit("\n\n", 1)[0]]

    def is_correct(self, known: Known) -> bool:
        return ((known.index + 0.5) * GOLDEN) % 1.0 < true_accuracy(known.task, known.params)

    @staticmethod
    def bare_last_line(known: Known) -> bool:
        """Whether the reply to `known` gives its value as a bare last line (outside the requested form)."""
        return known.index % len(_STYLES) == _STYLES.index("Working: 2, 4, 8.\n\n{x}")

    def __call__(self, body: dict[str, Any]) -> Reply:
        known = self.lookup(body)
        value = known.answer if self.is_correct(known) else _wrong(known)
        return Reply(content=_STYLES[known.index % len(_STYLES)].format(x=value))


def partition_tags(model: str, task: str = "arithmetic", dimensions: bool = True) -> dict[str, str]:
    """The partition tags of a model × task run: its key, and (as the UI and the daemons add them) each dimension's."""
    tags = {"dagster/partition": f"{model}|{task}"}
    return {**tags, "dagster/partition/model": model, "dagster/partition/task": task} if dimensions else tags
