"""Two `rs` processes starting at once on a brand-new state directory both get a working Dagster
instance: its SQLite storages are created once, under a lock (without it, 8 of 10 such starts crashed
with `table secondary_indexes already exists` or `UNIQUE constraint failed: alembic_version`)."""

import os
import subprocess
import sys

from rs_dagster.settings import PACKAGE_ROOT

TRIALS = 6
FIRST_START = "from rs_dagster.cli import _instance, _settings; print(len(_instance(_settings()).get_runs(limit=1)))"


def test_concurrent_first_starts_never_race_on_the_instance(tmp_path):
    for trial in range(TRIALS):
        home = tmp_path / f"trial{trial}" / ".rs"
        env = {**os.environ, "RS_HOME": str(home), "DAGSTER_HOME": str(home / "dagster")}
        starts = [
            subprocess.Popen([sys.executable, "-c", FIRST_START], env=env, cwd=PACKAGE_ROOT, text=True,
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE)
            for _ in range(2)
        ]
        results = [start.communicate(timeout=120) for start in starts]
        assert [start.returncode for start in starts] == [0, 0], [err[-2000:] for _, err in results]
        assert [out.strip() for out, _ in results] == ["0", "0"]
