"""Whether a lab is current, judged from what the warehouse holds (never from the Dagster run history:
a restored file, rows deleted by hand, a new RS_DB or a deleted report all show here).

A model × task is current at a scope when
- measured: its selection (the scope resolved against the model's suite, names sorted and deduplicated,
  with the model, task and scoring versions) was once completed without errors, and every request that
  completion needed is still stored as an answer (scope_coverage), and no error row waits to be asked again;
- derived: the `evaluation` stage's tables (prompts, scopes, scores, points, compression, hazard) and, for a
  model with a tokenizer, `token_fft`'s spectra still hold what they held when their run succeeded, built
  from the completions and versions stored now, by the code that runs now (lab_state).
The report stage is current when its tables and report/index.html are as its last run left them, built
from the partitioned tables as they are now. Anything else is stale, with the reason, and `rs eval` runs."""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from functools import cache, cached_property
from pathlib import Path

import polars as pl

from rs_dagster.models.registry import Model
from rs_dagster.prompting.scope import Scope, describe_suite, recorded_scopes, selected_scope, selection_id
from rs_dagster.scoring.outcomes import SCORING_VERSION
from rs_dagster.settings import PACKAGE_ROOT, Settings
from rs_dagster.storage import fingerprints
from rs_dagster.storage.fingerprints import ABSENT
from rs_dagster.storage.reads import Wanted, stored_answers
from rs_dagster.storage.warehouse import Warehouse
from rs_dagster.tasks.manifold import TaskSpec

EVALUATION = "evaluation"
TOKEN_FFT = "token_fft"
REPORT = "report"
STAGE_TABLES: dict[str, tuple[tuple[str, ...], tuple[str, ...]]] = {
    EVALUATION: (("completions",), ("prompts", "evaluated_scopes", "scored_results", "points", "compression", "compression_points", "hazard", "survival")),
    TOKEN_FFT: (("prompts",), ("fft_spectra",)),
    REPORT: (
        ("task_specs", "model_specs", "evaluated_scopes", "scored_results", "points", "compression_points", "hazard", "survival", "fft_spectra",
         "nights", "drift", "memorisation"),
        ("surfaces", "projections", "leaderboard", "comparisons", "reasonscore", "reasonscore_tasks"),
    ),
}
"""Per stage, (the tables it reads, the tables it writes): per model × task partition for evaluation and
token_fft, whole tables for the report."""
REPORT_FILE = "index.html"
REPORT_FOLDER = "report folder"
"""The report's files (settings.report_dir) as a part of the report stage."""


@cache
def code_fingerprint(sql_dir: Path) -> str:
    """A hash of every file of the package and of the SQL models: any edit counts, not only a bumped code_version."""
    digest = hashlib.sha256()
    for root in (PACKAGE_ROOT / "rs_dagster", sql_dir):
        for path in sorted(root.rglob("*")):
            if path.is_file() and "__pycache__" not in path.parts:
                digest.update(str(path.relative_to(root)).encode())
                digest.update(path.read_bytes())
    return digest.hexdigest()[:16]


def report_fingerprint(folder: Path) -> str:
    """The report as its files show it: index.html and every file of data/ by path and size, and the
    contents of the entry points (index.html, data/index.js, which name everything else); ABSENT without
    index.html. Other files of the folder (`rs fft` charts) are not the report stage's."""
    if not (folder / REPORT_FILE).is_file():
        return ABSENT
    digest = hashlib.sha256()
    files = sorted([(str(folder / REPORT_FILE), (folder / REPORT_FILE).stat().st_size), *_file_sizes(folder / "data")])
    for name, size in files:
        digest.update(f"{name[len(str(folder)):]}:{size}\n".encode())
    for entry in (folder / REPORT_FILE, folder / "data" / "index.js"):
        digest.update(entry.read_bytes() if entry.is_file() else b"")
    return f"{len(files)}:{digest.hexdigest()[:16]}"


def _file_sizes(folder: Path | str) -> Iterator[tuple[str, int]]:
    """(path, size) of every file under `folder` (none when it does not exist)."""
    if not os.path.isdir(folder):
        return
    for entry in os.scandir(folder):
        if entry.is_dir():
            yield from _file_sizes(entry.path)
        else:
            yield entry.path, entry.stat().st_size


class Snapshot:
    """The warehouse's fingerprints, read once (each table at most once) for every question asked of it."""

    def __init__(self, settings: Settings, warehouse: Warehouse):
        self.settings, self.warehouse = settings, warehouse
        self.present = fingerprints.existing_tables(warehouse)
        self._partitions: dict[str, dict[tuple[str, str], str]] = {}
        self._wholes: dict[str, str] = {}

    @cached_property
    def errors(self) -> dict[tuple[str, str], int]:
        return fingerprints.error_counts(self.warehouse, self.present)

    @cached_property
    def records(self) -> dict[tuple[str, str], dict]:
        return fingerprints.stage_records(self.warehouse, self.present)

    def rows(self, table: str, model: str, task: str) -> int:
        """Rows of `table` for the model × task."""
        fingerprint = self._partition(table, model, task)
        return 0 if fingerprint == ABSENT else int(fingerprint.partition(":")[0])

    def _partition(self, table: str, model: str, task: str) -> str:
        if table not in self._partitions:
            self._partitions[table] = fingerprints.partition_fingerprints(self.warehouse, table, self.present)
        return self._partitions[table].get((model, task), ABSENT)

    def _whole(self, table: str) -> str:
        if table not in self._wholes:
            self._wholes[table] = fingerprints.table_fingerprint(self.warehouse, table, self.present)
        return self._wholes[table]

    def stage(self, stage: str, model: Model | None = None, spec: TaskSpec | None = None, one_partition: bool = False) -> tuple[str, str]:
        """(inputs, outputs) of `stage` as the warehouse holds them now, as JSON texts naming each part; with
        `one_partition`, a model × task stage's tables are read for that partition only (one query), not summed
        per partition whole for the questions to come."""
        reads, writes = STAGE_TABLES[stage]
        if stage == REPORT:
            inputs = {table: self._whole(table) for table in reads}
            outputs = {table: self._whole(table) for table in writes} | {REPORT_FOLDER: report_fingerprint(self.settings.report_dir)}
        else:
            assert model is not None and spec is not None
            if one_partition:
                held = fingerprints.one_partition_fingerprints(self.warehouse, [*reads, *writes], self.present, model.name, spec.name)
            else:
                held = {table: self._partition(table, model.name, spec.name) for table in [*reads, *writes]}
            inputs = {table: held[table] for table in reads}
            inputs["versions"] = f"model {model.version}, task {spec.version}, scoring {SCORING_VERSION}"
            outputs = {table: held[table] for table in writes}
        return json.dumps(inputs, sort_keys=True), json.dumps(outputs, sort_keys=True)

    def stale_stage(self, stage: str, model: Model | None = None, spec: TaskSpec | None = None) -> list[str]:
        """Why `stage` (of model × task, or the report) is not as its last successful run left it; [] when it is."""
        partition = f"{model.name}|{spec.name}" if model and spec else ""
        record = self.records.get((stage, partition))
        if record is None:
            return [f"{stage} never completed in {self.warehouse.location}"]
        inputs, outputs = self.stage(stage, model, spec)
        reasons = [f"the code changed since {stage} ran"] if record["code"] != code_fingerprint(self.settings.sql_dir) else []
        reasons += [_change(name, then, now, stage) for name, then, now in [*_differences(record["inputs"], inputs), *_differences(record["outputs"], outputs)]]
        return reasons

    def record(self, stage: str, run_id: str, model: Model | None = None, spec: TaskSpec | None = None) -> None:
        """Record what `stage` was just built from and left (right after its run succeeded)."""
        inputs, outputs = self.stage(stage, model, spec, one_partition=True)
        partition = f"{model.name}|{spec.name}" if model and spec else ""
        fingerprints.record_stage(self.warehouse, stage, partition, inputs, outputs, code_fingerprint(self.settings.sql_dir), run_id)


def _differences(then: str, now: str) -> list[tuple[str, str, str]]:
    before, after = json.loads(then), json.loads(now)
    return [(name, before.get(name, ABSENT), after.get(name, ABSENT)) for name in sorted(set(before) | set(after)) if before.get(name) != after.get(name)]


def _change(name: str, then: str, now: str, stage: str) -> str:
    """One part of a stage that differs from what its run recorded, in words."""
    if name == "versions":
        return f"the model or task version changed since {stage} ran"
    if now == ABSENT:
        return f"{name} is missing (it was there when {stage} ran)"
    if then == ABSENT:
        return f"{name} appeared since {stage} ran"
    rows_then, rows_now = then.partition(":")[0], now.partition(":")[0]
    if rows_then != rows_now and rows_now.isdigit():
        return f"{name}: {rows_now} {'files' if name == REPORT_FOLDER else 'rows'} now, {rows_then} when {stage} ran"
    return f"{name} changed since {stage} ran"


@dataclass
class PairStatus:
    model: str
    task: str
    scope: str  # the selection, described
    stored: int  # completions stored for the pair (answers and errors, every scope and version)
    scopes: list[str]  # every scope the pair was evaluated at (evaluated_scopes), described
    answers: int  # answers the selection's last completion needed (0: never completed)
    stale: list[str] = field(default_factory=list)  # why it is not current; empty when it is
    requests: int = 0  # what `rs eval` would send at most

    @property
    def current(self) -> bool:
        return not self.stale


@dataclass
class LabStatus:
    pairs: list[PairStatus]
    report: list[str]  # why the report is stale; empty when current

    @property
    def current(self) -> bool:
        return not self.report and all(pair.current for pair in self.pairs)


def lab_status(settings: Settings, pairs: Sequence[tuple[Model, TaskSpec]], scope: Scope) -> LabStatus:
    """Per model × task of `pairs` at `scope`, whether it is current and why not; and whether the report is."""
    warehouse = Warehouse.from_settings(settings)
    with warehouse.reading():
        snapshot = Snapshot(settings, warehouse)
        history = warehouse.table("evaluated_scopes") if "evaluated_scopes" in snapshot.present else None
        chosen = []
        for model, spec in pairs:
            stored = [] if history is None else history.filter((pl.col("model") == model.name) & (pl.col("task") == spec.name))["scope_json"].to_list()
            selected = selected_scope(spec, model, scope, stored)
            chosen.append((model, spec, selected, selection_id(selected, model, spec), stored))
        covered = fingerprints.coverage(warehouse, snapshot.present, [(m.name, s.name, sid) for m, s, _, sid, _ in chosen])
        statuses, unmeasured = [], []
        for model, spec, selected, sid, records in chosen:
            needed, missing = covered.get((model.name, spec.name, sid), (0, None))
            scopes = [describe_suite(s) for s in recorded_scopes(records)]
            status = PairStatus(model.name, spec.name, selected.describe(), snapshot.rows("completions", model.name, spec.name), scopes, needed)
            if missing is None:
                status.stale.append("never evaluated here" if not status.stored else
                                    f"{selected.describe()} never completed at the current model, task and scoring versions")
            elif missing:
                status.stale.append(f"{missing} of the {needed} answers it needs are not stored")
            if errors := snapshot.errors.get((model.name, spec.name)):
                status.stale.append(f"{errors} error completions to ask again")
            if not status.stale:  # measured; are the tables derived from it as their runs left them?
                status.stale += snapshot.stale_stage(EVALUATION, model, spec)
                if model.entry.tokenizer is not None:
                    status.stale += snapshot.stale_stage(TOKEN_FFT, model, spec)
            if missing is None or missing:
                unmeasured.append((status, Wanted(model.name, spec.name, model.version, spec.version, selected.max_items, selected.repeats)))
            statuses.append(status)
        answered = stored_answers(warehouse, [wanted for _, wanted in unmeasured])
        for status, wanted in unmeasured:  # at most what the selection asks, less what is stored
            status.requests = sum(wanted.items.values()) * wanted.repeats - answered.get((wanted.model, wanted.task), 0)
        return LabStatus(statuses, snapshot.stale_stage(REPORT))
