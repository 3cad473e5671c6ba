"""Whether an evaluation would change nothing, read from the runs the instance holds (light: no
definitions are built, so `rs eval` answers in about the time Python and Dagster take to start).

Re-running is a no-op when, for every model × task, the latest `evaluation` run of the partition
succeeded with the same scope, the same model and task versions and the same code (a hash of the
package and the SQL models: any edit counts, not only a bumped code_version), no later run touched the
partition's evaluation assets, its token-FFT (for a model with a tokenizer) ran after it, no stored
completion of the pair is an error (errors are asked again), and the latest `refresh_report` run
succeeded after the latest `evaluation` run of any partition. Anything else, or `--force`, runs."""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from functools import cache
from pathlib import Path

import dagster as dg

from rs_dagster.models.registry import Model
from rs_dagster.settings import PACKAGE_ROOT, Settings
from rs_dagster.storage.reads import error_completions
from rs_dagster.storage.warehouse import Warehouse
from rs_dagster.tasks.manifold import TaskSpec

CODE_TAG = "rs/code"
VERSIONS_TAG = "rs/versions"
FFT_JOB = "token_fft"
_PARTITION_TAG = "dagster/partition"


@cache
def code_fingerprint(sql_dir: Path) -> str:
    """A hash of every file of the package and of the SQL models, as run tag `rs/code`."""
    digest = hashlib.sha256()
    for root in (PACKAGE_ROOT / "rs_dagster", sql_dir):
        for path in sorted(root.rglob("*")):
            if path.is_file() and "__pycache__" not in path.parts:
                digest.update(str(path.relative_to(root)).encode())
                digest.update(path.read_bytes())
    return digest.hexdigest()[:16]


def evaluation_tags(settings: Settings, model: Model, spec: TaskSpec) -> dict[str, str]:
    return {CODE_TAG: code_fingerprint(settings.sql_dir), VERSIONS_TAG: f"{model.version}|{spec.version}"}


def _latest(instance: dg.DagsterInstance, **filters) -> dg.RunRecord | None:
    records = instance.get_run_records(dg.RunsFilter(**filters), limit=1)
    return records[0] if records else None


def _succeeded_with(record: dg.RunRecord | None, tags: dict[str, str]) -> bool:
    return (
        record is not None
        and record.dagster_run.status == dg.DagsterRunStatus.SUCCESS
        and all(record.dagster_run.tags.get(key) == value for key, value in tags.items())
    )


def unchanged_evaluation(
    settings: Settings, instance: dg.DagsterInstance, pairs: Sequence[tuple[Model, TaskSpec]], scope_config: dict
) -> list[str] | None:
    """The runs whose results are current for `pairs` at the scope whose run config is `scope_config`, or
    None when something would change (see the module's docstring)."""
    code = code_fingerprint(settings.sql_dir)
    finished = []
    for model, spec in pairs:
        partition = f"{model.name}|{spec.name}"
        evaluation = _latest(instance, job_name="evaluation", tags={_PARTITION_TAG: partition})
        if not _succeeded_with(evaluation, evaluation_tags(settings, model, spec)) or evaluation is None:
            return None
        given = evaluation.dagster_run.run_config
        if (given.get("resources", {}) if isinstance(given, dict) else {}).get("scope") != scope_config.get("resources", {}).get("scope"):
            return None
        later = _latest(instance, tags={_PARTITION_TAG: partition})
        if later is not None and later.dagster_run.job_name != FFT_JOB and later.dagster_run.run_id != evaluation.dagster_run.run_id:
            return None  # a run of the UI (or another job) materialized the partition since
        if model.entry.tokenizer is not None:
            fft = _latest(instance, job_name=FFT_JOB, tags={_PARTITION_TAG: partition})
            if not _succeeded_with(fft, {CODE_TAG: code}) or fft is None or fft.create_timestamp < evaluation.create_timestamp:
                return None
            finished.append(fft.dagster_run.run_id)
        finished.append(evaluation.dagster_run.run_id)
    newest = _latest(instance, job_name="evaluation")
    report = _latest(instance, job_name="refresh_report")
    if newest is None or not _succeeded_with(report, {CODE_TAG: code}) or report is None or report.create_timestamp.timestamp() < (newest.end_time or float("inf")):
        return None
    if error_completions(Warehouse.from_settings(settings), [(model.name, spec.name) for model, spec in pairs]):
        return None
    return [*finished, report.dagster_run.run_id]
