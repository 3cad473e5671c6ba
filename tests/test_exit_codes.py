"""`rs eval`'s exit code tells a script whether the measurement is clean: 3 when an evaluated partition
failed an ERROR check (error_share above 25%), with the partitions named; what was measured is kept."""

import os
import subprocess

from helpers import RS, Oracle, lab_env, make_lab, scripted_model

from rs_dagster.cli import CHECKS_FAILED
from rs_dagster.settings import PACKAGE_ROOT
from rs_dagster.storage.warehouse import Warehouse
from rs_dagster.testing.scripted_server import Reply, ScriptedServer


def test_an_evaluation_that_is_mostly_errors_exits_3_and_names_the_partition(tmp_path):
    oracle = Oracle(make_lab(tmp_path / "probe", {}), items_per_point=4)
    asked = iter(range(10_000))

    def dying(body):  # three requests in four refused for good (400 is not retried): error rows
        return oracle(body) if next(asked) % 4 == 0 else Reply(status=400, content="bad request")

    with ScriptedServer(dying) as server:
        lab = make_lab(tmp_path / "lab", {"scripted": scripted_model(server.base_url)})
        args = ["eval", "--model", "scripted", "--tasks", "boolean", "--tier", "easy", "--samples", "4"]
        result = subprocess.run([*RS, *args], env={**os.environ, **lab_env(lab)}, capture_output=True, text=True, cwd=PACKAGE_ROOT, timeout=300)
    assert result.returncode == CHECKS_FAILED == 3, result.stderr[-3000:]
    text = " ".join(result.stderr.split())
    assert "1 ERROR check(s) failed (exit code 3)" in text
    assert "scripted|boolean: scored_results check error_share failed:" in text
    assert "Leaderboard" in result.stdout  # what was measured is still shown
    errors = Warehouse(lab.db_path).query("SELECT count(*) FILTER (WHERE error IS NOT NULL) AS e, count(*) AS n FROM completions")
    assert errors["e"][0] / errors["n"][0] > 0.25 and errors["e"][0] < errors["n"][0]
