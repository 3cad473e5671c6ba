"""Where things live. Everything is resolved from the environment so the CLI, the Dagster UI and the
tests agree on one DuckDB file, one Dagster instance and one set of user-edited inputs."""

from __future__ import annotations

import json
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path

from rs_dagster.storage.shared import WAREHOUSE_DATA_ENV, WAREHOUSE_ENV, SharedWarehouse, parse_warehouse

PACKAGE_ROOT = Path(__file__).resolve().parent.parent


# The persistent Dagster instance: run retries on (runs opt in with the dagster/max_retries tag), and
# at most one queued run per endpoint at a time (the runs' rs/endpoint tag): within a run the
# endpoint's adaptive limit keeps it saturated; two runs on one endpoint would over-subscribe it.
# The queue is Dagster's QueuedRunCoordinator, subclassed (rs_dagster.run_queue): it tags every run it
# queues with its endpoint, whoever launched it, and holds back a failing model's automatic runs; the
# `concurrency: runs:` limits apply to it as to Dagster's own (Dagster reads them for any subclass): one
# run at a time per endpoint, and per partition (an automation run that re-scores a model × task waits
# for a UI run of that partition instead of writing its tables beside it).
# The event log is Dagster's SQLite one with its connections kept open (rs_dagster.defs.event_log).
DAGSTER_YAML = """telemetry:
  enabled: false
run_retries:
  enabled: true
run_coordinator:
  module: rs_dagster.run_queue
  class: LabRunCoordinator
concurrency:
  runs:
    tag_concurrency_limits:
      - key: rs/endpoint
        value:
          applyLimitPerUniqueValue: true
        limit: 1
      - key: dagster/partition
        value:
          applyLimitPerUniqueValue: true
        limit: 1
event_log_storage:
  module: rs_dagster.defs.event_log
  class: PooledSqliteEventLogStorage
  config:
    base_dir: {event_log_dir}
"""


EARLIER_DAGSTER_YAMLS = (
    """telemetry:
  enabled: false
run_retries:
  enabled: true
concurrency:
  runs:
    tag_concurrency_limits:
      - key: rs/endpoint
        value:
          applyLimitPerUniqueValue: true
        limit: 1
event_log_storage:
  module: rs_dagster.defs.event_log
  class: PooledSqliteEventLogStorage
  config:
    base_dir: {event_log_dir}
""",
    """telemetry:
  enabled: false
run_retries:
  enabled: true
concurrency:
  runs:
    tag_concurrency_limits:
      - key: rs/endpoint
        value:
          applyLimitPerUniqueValue: true
        limit: 1
""",
)
"""What earlier versions of `rs` wrote as DAGSTER_YAML: a lab's dagster.yaml that is exactly one of them is
replaced by the current one (an edited one is left alone). The SQLite files stay where they were (the
event log's base_dir is Dagster's default one, history/runs)."""


@dataclass(frozen=True)
class Settings:
    home: Path  # state root: DuckDB file, response cache, report, Dagster instance
    inputs: Path  # user-edited inputs: tasks/, templates/, samplers/, models.yaml
    db_path: Path
    dagster_home: Path
    warehouse: SharedWarehouse | None = None  # RS_WAREHOUSE: a warehouse many hosts share; None: the DuckDB file db_path

    @property
    def cache_dir(self) -> Path:
        return self.home / "cache"

    @property
    def report_dir(self) -> Path:
        return self.home / "report"

    @property
    def tasks_dir(self) -> Path:
        return self.inputs / "tasks"

    @property
    def templates_dir(self) -> Path:
        return self.inputs / "templates"

    @property
    def samplers_dir(self) -> Path:
        return self.inputs / "samplers"

    @property
    def models_file(self) -> Path:
        return self.inputs / "models.yaml"

    @property
    def local_models_file(self) -> Path:
        """Models registered on the fly by `rs eval --base-url`; kept out of the user's models.yaml."""
        return self.home / "models.local.yaml"

    @property
    def warehouse_location(self) -> str:
        """Where the results are, as shown to the user (a DSN's password masked)."""
        return str(self.warehouse) if self.warehouse else f"{self.db_path} (DuckDB)"

    @property
    def sql_dir(self) -> Path:
        return Path(os.environ.get("RS_SQL", PACKAGE_ROOT / "dbt_like_sql")).resolve()

    @classmethod
    def from_env(cls) -> Settings:
        home = Path(os.environ.get("RS_HOME", ".rs")).resolve()
        default_inputs = Path("assets") if Path("assets/tasks").is_dir() else PACKAGE_ROOT / "assets"
        inputs = Path(os.environ.get("RS_INPUTS", default_inputs)).resolve()
        db_path = Path(os.environ.get("RS_DB", home / "rs.duckdb")).resolve()
        dagster_home = Path(os.environ.get("DAGSTER_HOME", home / "dagster")).resolve()
        warehouse = parse_warehouse(os.environ.get(WAREHOUSE_ENV), os.environ.get(WAREHOUSE_DATA_ENV))
        return cls(home=home, inputs=inputs, db_path=db_path, dagster_home=dagster_home, warehouse=warehouse)

    def ensure_dirs(self) -> None:
        for path in (self.home, self.cache_dir, self.report_dir, self.dagster_home, self.db_path.parent):
            path.mkdir(parents=True, exist_ok=True)
        instance_config = self.dagster_home / "dagster.yaml"
        event_log_dir = json.dumps(str(self.dagster_home / "history" / "runs"))
        if not instance_config.exists() or instance_config.read_text() in {text.format(event_log_dir=event_log_dir) for text in EARLIER_DAGSTER_YAMLS}:
            # Replaced whole: a process reading it meanwhile sees the old text or the new one.
            with tempfile.NamedTemporaryFile("w", dir=self.dagster_home, prefix=".dagster.yaml.", delete=False) as staged:
                staged.write(DAGSTER_YAML.format(event_log_dir=event_log_dir))
            os.chmod(staged.name, 0o644)  # as write_text leaves a new file (the temporary one is private)
            Path(staged.name).replace(instance_config)
