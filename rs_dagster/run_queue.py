"""The lab's run queue (issue 23): every run that may send requests to a model's endpoint waits its turn,
at most one run per endpoint at a time, whatever started it.

The instance's dagster.yaml (rs_dagster.settings.DAGSTER_YAML, deploy/dagster.yaml) names
`LabRunCoordinator`, Dagster's QueuedRunCoordinator with one step added at submission: before a run is
QUEUED (the daemon checks the tag limits when it dequeues) its tags are rewritten to describe the run
itself, for runs from every source (the UI's Launch and Re-execute, the schedule, sensors, declarative
automation, backfills, run retries):

- `rs/endpoint`: host:port of its model's base_url (rs_dagster.defs.automation.endpoint_tag), read from
  models.yaml at submission, for runs that can send requests (the `evaluation` job, or a selection holding
  `completions`); the instance's `concurrency: runs: tag_concurrency_limits` allows one run per value.
- `rs/source`: what started it, from Dagster's own tags: `retry` (dagster/retry_number), `backfill`,
  `re-execution` (dagster/parent_run_id), `automation` (dagster/from_automation_condition: the
  default_automation_condition_sensor's runs), `sensor`, `schedule`, else `ui`. `rs eval`'s runs, which
  execute in its own process and never pass a run coordinator, carry `cli`.
- `rs/versions` (model version|task version) and `rs/code` (rs_dagster.freshness.code_fingerprint): the
  values at launch, not a parent run's (a re-execution copies its parent's tags).

A tag lookup that fails (a model no longer in models.yaml, an input that does not read) leaves those tags
as they were, with a warning in the run's event log: a submission never fails for it.

**Backoff policy.** A model whose last 3 (`BACKOFF_RUNS`) finished runs that can send requests each
failed because its endpoint failed (every request failed: the completions asset tags the run
`rs/endpoint_failed` with the reason) is backed off for 6 hours (`BACKOFF`) after the end of the latest of
them. While it is, runs for that model from the automatic sources (schedule, sensor, automation, backfill,
retry) are not started: they are marked CANCELED at submission, with a message naming the model, the
failed runs, their reason and until when (and the tag `rs/backed_off_until`); canceled, they are not
retried either. Runs a person launches (the UI's Launch and Re-execute, `rs eval`) still start, and count:
one that succeeds ends the backoff, one that fails the same way extends it. `backed_off(instance, model)`
says whether a model is backed off now (for the nightly schedule to skip it, for the UI to show it).

`rs eval` executes its runs in its own process: before each run tagged `rs/endpoint` it waits while a run
of another process holds that endpoint (`endpoint_turn`); its own runs side by side (`--parallel`) share
the endpoint's limit among themselves (rs_dagster.execution.shares) and do not wait for each other."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Container, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

import dagster as dg
from dagster._core.run_coordinator import QueuedRunCoordinator, SubmitRunContext
from dagster._core.storage.tags import (
    AUTO_MATERIALIZE_TAG,
    AUTOMATION_CONDITION_TAG,
    BACKFILL_ID_TAG,
    MULTIDIMENSIONAL_PARTITION_PREFIX,
    PARENT_RUN_ID_TAG,
    PARTITION_NAME_TAG,
    RETRY_NUMBER_TAG,
    SCHEDULE_NAME_TAG,
    SENSOR_NAME_TAG,
)

if TYPE_CHECKING:
    from rs_dagster.settings import Settings

ENDPOINT_TAG = "rs/endpoint"
SOURCE_TAG = "rs/source"
CODE_TAG = "rs/code"  # = rs_dagster.orchestrate.CODE_TAG (not imported: that module builds the definitions)
VERSIONS_TAG = "rs/versions"  # = rs_dagster.orchestrate.VERSIONS_TAG
ENDPOINT_FAILED_TAG = "rs/endpoint_failed"
"""Set on a run whose completions step failed because every request to the endpoint failed; the reason."""
BACKED_OFF_TAG = "rs/backed_off_until"
"""Set on a run canceled at submission because its model was backed off: until when (ISO 8601, UTC)."""
OUTCOME_TAGS = (ENDPOINT_FAILED_TAG, BACKED_OFF_TAG)
"""Tags that say how a run ended: a re-execution or a retry copies them from its parent, and the queue
empties them (only a non-empty value is the run's own)."""

REQUESTING_JOBS = frozenset({"evaluation", "watch"})
REQUESTING_ASSETS = frozenset({"completions", "canary"})
"""The assets (and steps) that send requests to a model's endpoint, and the jobs that hold them."""
MODEL_DIMENSION, TASK_DIMENSION = "model", "task"

BACKOFF_RUNS = 3
BACKOFF = timedelta(hours=6)
AUTOMATIC_SOURCES = frozenset({"schedule", "sensor", "automation", "backfill", "retry"})
"""Sources whose runs a backed-off model does not start; `ui`, `re-execution` and `cli` are a person's."""
ACTIVE = (dg.DagsterRunStatus.STARTING, dg.DagsterRunStatus.STARTED, dg.DagsterRunStatus.CANCELING)
"""Statuses of a run that may be sending requests (what `rs eval` waits for)."""

logger = logging.getLogger(__name__)


def run_source(tags: Mapping[str, str]) -> str:
    """What started a run, from the tags Dagster gives it. A retry and a re-execution copy their parent's
    tags (its schedule, sensor or automation tags), so they are told apart first."""
    if RETRY_NUMBER_TAG in tags:
        return "retry"
    if PARENT_RUN_ID_TAG in tags:
        return "re-execution"
    if tags.get(AUTOMATION_CONDITION_TAG) == "true" or tags.get(AUTO_MATERIALIZE_TAG) == "true":
        return "automation"  # before backfill: automation launches a multi-asset partitioned request as a backfill
    if BACKFILL_ID_TAG in tags:
        return "backfill"
    if SENSOR_NAME_TAG in tags:
        return "sensor"
    if SCHEDULE_NAME_TAG in tags:
        return "schedule"
    return "ui"


def partition_of(tags: Mapping[str, str]) -> tuple[str | None, str | None]:
    """(model, task) of a run's model × task partition, from its dimension tags or else its partition key
    ("model|task": a multi-partition key lists its dimensions by name); None where the run has none."""
    model = tags.get(f"{MULTIDIMENSIONAL_PARTITION_PREFIX}{MODEL_DIMENSION}")
    task = tags.get(f"{MULTIDIMENSIONAL_PARTITION_PREFIX}{TASK_DIMENSION}")
    if model is None and task is None:
        parts = tags.get(PARTITION_NAME_TAG, "").split("|")
        if len(parts) == 2:
            model, task = parts
    return model or None, task or None


def sends_requests(run: dg.DagsterRun, instance: dg.DagsterInstance) -> bool:
    """Whether the run may send requests to a model's endpoint: a run of the `evaluation` or `watch` job, or
    of a selection (an asset job, a UI materialization, an automation run) that holds `completions` or `canary`."""
    if run.job_name in REQUESTING_JOBS:
        return True
    if run.asset_selection is not None:
        return any(dg.AssetKey(asset) in run.asset_selection for asset in REQUESTING_ASSETS)
    plan = instance.get_execution_plan_snapshot(run.execution_plan_snapshot_id) if run.execution_plan_snapshot_id else None
    return plan is not None and bool(REQUESTING_ASSETS & set(plan.step_keys_to_execute))


def launch_tags(run: dg.DagsterRun, instance: dg.DagsterInstance, settings: Settings) -> tuple[dict[str, str], list[str]]:
    """The tags that describe `run` at its launch, and warnings about those that could not be looked up
    (their tags are left out)."""
    from rs_dagster.defs.automation import endpoint_tag
    from rs_dagster.freshness import code_fingerprint
    from rs_dagster.models.registry import load_each_model
    from rs_dagster.tasks.manifold import load_manifold

    tags = {SOURCE_TAG: run_source(run.tags), CODE_TAG: code_fingerprint(settings.sql_dir)}
    # What a run that has not started holds of these was copied from its parent (a re-execution, a retry):
    # emptied (a tag cannot be removed), it is not taken for this run's.
    tags |= {key: "" for key in OUTCOME_TAGS if run.tags.get(key)}
    warnings: list[str] = []
    model_name, task_name = partition_of(run.tags)
    if model_name is None:
        if sends_requests(run, instance):
            warnings.append(f"run of {run.job_name} has no model partition: it is not tagged {ENDPOINT_TAG}, so no endpoint queue holds it")
        return tags, warnings
    models, errors = load_each_model(settings)
    model = models.get(model_name)
    if model is None:
        why = f"its entry does not read ({errors[model_name]})" if model_name in errors else f"it is not in {settings.models_file}"
        warnings.append(f"model {model_name!r}: {why}; the run's {ENDPOINT_TAG} and {VERSIONS_TAG} tags are left as they were")
        return tags, warnings
    if sends_requests(run, instance):
        tags |= endpoint_tag(model)
    if task_name is not None:
        path = settings.tasks_dir / f"{task_name}.yaml"
        try:
            tags[VERSIONS_TAG] = f"{model.version}|{load_manifold(path).version}"
        except Exception as exc:  # a removed or broken task file: the tag is left as it was
            warnings.append(f"task {task_name!r}: {exc}; the run's {VERSIONS_TAG} tag is left as it was")
    return tags, warnings


@dataclass(frozen=True)
class BackOff:
    """A model whose automatic runs are not started until `until`: its last BACKOFF_RUNS runs (`failures`,
    run ids, latest first) each failed because every request to its endpoint failed (`last_reason`: the
    latest one's reason)."""

    model: str
    failures: tuple[str, ...]
    until: datetime
    last_reason: str

    def message(self) -> str:
        ids = ", ".join(run_id[:8] for run_id in self.failures)
        return (f"model {self.model} is backed off until {self.until:%Y-%m-%d %H:%M} UTC: its last {len(self.failures)} runs that send "
                f"requests ({ids}) each failed because every request to its endpoint failed (latest: {self.last_reason}). Runs from the "
                f"schedule, sensors, automation, backfills and retries are not started for it until then; a run launched from the UI "
                f"or `rs eval` still starts (one that succeeds ends the backoff).")


def _ended(record: dg.RunRecord) -> datetime:
    if record.end_time is not None:
        return datetime.fromtimestamp(record.end_time, UTC)
    stamp = record.update_timestamp
    return stamp if stamp.tzinfo else stamp.replace(tzinfo=UTC)


def backed_off(instance: dg.DagsterInstance, model: str, now: datetime | None = None) -> BackOff | None:
    """The model's backoff if it is backed off at `now` (default: the current time), else None. Looks at
    the model's latest finished (succeeded or failed) runs that can send requests, canceled ones left out
    (a run canceled by the backoff neither prolongs nor ends it)."""
    now = now or datetime.now(UTC)
    finished = [dg.DagsterRunStatus.SUCCESS, dg.DagsterRunStatus.FAILURE]
    records = instance.get_run_records(
        dg.RunsFilter(statuses=finished, tags={f"{MULTIDIMENSIONAL_PARTITION_PREFIX}{MODEL_DIMENSION}": model}), limit=20 * BACKOFF_RUNS
    )
    requesting = [r for r in records if ENDPOINT_TAG in r.dagster_run.tags or r.dagster_run.job_name in REQUESTING_JOBS]
    latest = requesting[:BACKOFF_RUNS]
    if len(latest) < BACKOFF_RUNS or any(
        r.dagster_run.status != dg.DagsterRunStatus.FAILURE or not r.dagster_run.tags.get(ENDPOINT_FAILED_TAG) for r in latest
    ):
        return None
    until = max(_ended(r) for r in latest) + BACKOFF
    if now >= until:
        return None
    return BackOff(model, tuple(r.dagster_run.run_id for r in latest), until, latest[0].dagster_run.tags[ENDPOINT_FAILED_TAG])


def _utcnow() -> datetime:
    return datetime.now(UTC)


class LabRunCoordinator(QueuedRunCoordinator):
    """Dagster's queue (its config and the instance's `concurrency:` limits apply as they are) with each
    run's tags rewritten at submission, and runs of a backed-off model from automatic sources canceled
    (see the module's docstring)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.clock: Callable[[], datetime] = _utcnow  # the tests set another

    def submit_run(self, context: SubmitRunContext) -> dg.DagsterRun:
        run = context.dagster_run
        if run.status == dg.DagsterRunStatus.NOT_STARTED:  # else already submitted: Dagster's no-op
            run = self._describe(run)
            backoff = self._backoff(run)
            if backoff is not None and (canceled := self._cancel(run, backoff)) is not None:
                return canceled
        return super().submit_run(context._replace(dagster_run=run))

    def _describe(self, run: dg.DagsterRun) -> dg.DagsterRun:
        from rs_dagster.settings import Settings

        try:  # never fail a submission for a tag
            tags, warnings = launch_tags(run, self._instance, Settings.from_env())
            changed = {key: value for key, value in tags.items() if run.tags.get(key) != value}
            if changed:
                self._instance.add_run_tags(run.run_id, changed)
            for warning in warnings:
                logger.warning("run %s: %s", run.run_id, warning)
                self._instance.report_engine_event(f"Queue tags: {warning}", run)
            return self._instance.get_run_by_id(run.run_id) or run
        except Exception:
            logger.warning("run %s: its rs/ tags could not be set; it is queued as it is", run.run_id, exc_info=True)
            return self._instance.get_run_by_id(run.run_id) or run

    def _backoff(self, run: dg.DagsterRun) -> BackOff | None:
        if run.tags.get(SOURCE_TAG) not in AUTOMATIC_SOURCES:
            return None
        model, _ = partition_of(run.tags)
        try:
            if model is None or not sends_requests(run, self._instance):
                return None
            return backed_off(self._instance, model, self.clock())
        except Exception:
            logger.warning("run %s: whether model %s is backed off could not be read; the run is queued", run.run_id, model, exc_info=True)
            return None

    def _cancel(self, run: dg.DagsterRun, backoff: BackOff) -> dg.DagsterRun | None:
        """The run marked CANCELED with the backoff's message; None if it could not be (it is queued then)."""
        message = f"Not started (canceled at submission): {backoff.message()}"
        try:
            self._instance.add_run_tags(run.run_id, {BACKED_OFF_TAG: backoff.until.isoformat(timespec="seconds")})
            logger.warning("run %s: %s", run.run_id, message)
            self._instance.report_run_canceled(run, message=message)
            return self._instance.get_run_by_id(run.run_id) or run
        except Exception:
            logger.warning("run %s: could not be canceled (%s); it is queued", run.run_id, message, exc_info=True)
            return None


# --- rs eval: runs in this process wait for the endpoint's other runs --------------------------------

class _RunIds(Container[str]):
    """Run ids that threads add and remove while others ask about them."""

    def __init__(self) -> None:
        self._ids: set[str] = set()
        self._lock = threading.Lock()

    def __contains__(self, run_id: object) -> bool:
        with self._lock:
            return run_id in self._ids

    def add(self, run_id: str) -> None:
        with self._lock:
            self._ids.add(run_id)

    def discard(self, run_id: str) -> None:
        with self._lock:
            self._ids.discard(run_id)


_own_runs = _RunIds()
"""The runs this process is executing in-process under endpoint_turn."""


def wait_for_endpoint(
    instance: dg.DagsterInstance,
    endpoint: str,
    what: str,
    ignore: Container[str] = (),
    on_wait: Callable[[str], None] | None = None,
    poll_s: float = 1.0,
) -> float:
    """Return once no run tagged `rs/endpoint: endpoint` (other than the ids in `ignore`) is starting,
    started or canceling, polling every `poll_s`; the seconds waited. `on_wait` (default: a warning in the
    log) is told once what it waits for. After Ctrl-C it raises Interrupted (rs_dagster.interrupts)."""
    from rs_dagster.interrupts import stop_if_requested

    started = time.monotonic()
    told = False
    while True:
        stop_if_requested(what)
        records = instance.get_run_records(dg.RunsFilter(statuses=list(ACTIVE), tags={ENDPOINT_TAG: endpoint}))
        holders = [r.dagster_run for r in records if r.dagster_run.run_id not in ignore]
        if not holders:
            return time.monotonic() - started
        if not told:
            told = True
            held = ", ".join(f"{r.run_id[:8]} ({r.job_name} {r.tags.get(PARTITION_NAME_TAG, '')}, {r.tags.get(SOURCE_TAG, '?')}, "
                             f"{r.status.value})" for r in holders)
            message = (f"{what}: waiting for endpoint {endpoint}, held by run {held}: one run per endpoint at a time "
                       f"(Ctrl-C stops waiting)")
            (on_wait or logger.warning)(message)
        time.sleep(poll_s)


@contextmanager
def endpoint_turn(
    instance: dg.DagsterInstance,
    endpoint: str | None,
    what: str,
    on_wait: Callable[[str], None] | None = None,
    poll_s: float = 1.0,
) -> Iterator[str]:
    """Around an in-process run (`rs eval`): wait for `endpoint` (when the run is tagged with one; runs
    this process executes meanwhile do not count), then yield the run id to execute the run under, which
    counts as this process's until the block ends."""
    from dagster._core.utils import make_new_run_id

    run_id = make_new_run_id()
    if endpoint:
        wait_for_endpoint(instance, endpoint, what, ignore=_own_runs, on_wait=on_wait, poll_s=poll_s)
    _own_runs.add(run_id)
    try:
        yield run_id
    finally:
        _own_runs.discard(run_id)
