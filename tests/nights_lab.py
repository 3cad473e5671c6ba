"""A lab of watched nights for the tests and the screenshots: a scripted hosted model whose canary is asked
night after night through the `watched_nights` schedule (its scheduled_execution_time), stable for
STABLE_NIGHTS nights, then 10 points worse on arithmetic, then served under a new system_fingerprint."""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path

import dagster as dg
from helpers import Oracle, _wrong, make_lab, scripted_model

from rs_dagster.settings import Settings
from rs_dagster.testing.scripted_server import Reply, ScriptedServer

ITEMS = 150  # per point: 2 easy points, 300 items per task and night
STABLE_NIGHTS = 20
FIRST_NIGHT = datetime(2026, 1, 2, 3, tzinfo=UTC)
WATCH = {"tasks": ["arithmetic", "boolean"], "tiers": ["easy"], "n": ITEMS, "hour": 3, "max_requests": 400}


def draw(key: str) -> float:
    """A uniform number in [0, 1) decided by `key`: the scripted answers are the same on every run."""
    return int(hashlib.sha256(key.encode()).hexdigest()[:12], 16) / 16**12


class NightlyServer(Oracle):
    """A hosted model: on each night every item is answered right with probability accuracy[task] (drawn from
    the question and the night, so nights are independent samples), and the response reports `fingerprint`."""

    def __init__(self, settings: Settings):
        super().__init__(settings, items_per_point=ITEMS)
        self.night, self.fingerprint = "", "fp_a"
        self.accuracy = {"arithmetic": 0.9, "boolean": 0.9}

    def __call__(self, body):
        known = self.lookup(body)
        right = draw(f"{self.night}|{body['messages'][-1]['content']}") < self.accuracy[known.task]
        return Reply(content=f"Done.\nANSWER: {known.answer if right else _wrong(known)}", system_fingerprint=self.fingerprint,
                     model="hosted-2026-01-01", served={"provider": "ScriptedCloud"})

    def enter(self, night_number: int, when: datetime) -> str:
        """The server as it is on night `night_number` (1-based): the drop, then the new fingerprint."""
        self.night = f"{when:%Y-%m-%d}"
        if night_number == STABLE_NIGHTS + 1:
            self.accuracy["arithmetic"] = 0.8
        if night_number == STABLE_NIGHTS + 2:
            self.fingerprint = "fp_b"
        return self.night


def night_time(night_number: int) -> datetime:
    return FIRST_NIGHT + timedelta(days=night_number - 1)


def run_schedule(defs: dg.Definitions, instance: dg.DagsterInstance, name: str, when: datetime, models: tuple[str, ...] | None = None
                 ) -> list[tuple[dg.RunRequest, dg.ExecuteInProcessResult]]:
    """The schedule's tick at `when`, and each run it asks for (of `models` only, when given) executed in process."""
    schedule = defs.get_schedule_def(name)
    context = dg.build_schedule_context(instance=instance, scheduled_execution_time=when, repository_def=defs.get_repository_def())
    done = []
    for request in schedule.evaluate_tick(context).run_requests or []:
        if models is not None and request.partition_key.split("|")[0] not in models:
            continue
        result = defs.resolve_job_def(schedule.job_name).execute_in_process(
            run_config=request.run_config, partition_key=request.partition_key, instance=instance, tags=request.tags)
        done.append((request, result))
    return done


@contextmanager
def watched_lab(root: Path, nights: int = STABLE_NIGHTS + 2) -> Iterator[Settings]:
    """A lab whose model `hosted` was watched for `nights` nights (screenshots; the test walks them itself)."""
    from rs_dagster.definitions import build_definitions

    server = NightlyServer(make_lab(root / "probe", {}))
    with ScriptedServer(server) as scripted, dg.instance_for_test() as instance:
        lab = make_lab(root / "lab", {"hosted": scripted_model(scripted.base_url, watch=WATCH)})
        defs = build_definitions(lab)
        for number in range(1, nights + 1):
            when = night_time(number)
            server.enter(number, when)
            run_schedule(defs, instance, "watched_nights", when)
        yield lab
