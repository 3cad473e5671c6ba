"""The Dagster UI as a front end: `rs eval` (a subprocess, real HTTP) makes runs of the named jobs of the
definitions, and the real `dagster-webserver` on that instance serves, through its GraphQL API, the
CLI's runs on the `evaluation` job's page (re-executable), the column schemas and row counts of the
table assets, and the asset checks with descriptions and per-partition executions."""

import json
import os
import shutil
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

import pytest
import yaml
from helpers import RS, Oracle, lab_env, make_lab, scripted_model

from rs_dagster.scoring.quality import LIMITS
from rs_dagster.settings import PACKAGE_ROOT
from rs_dagster.testing.scripted_server import Reply, ScriptedServer
from rs_dagster.testing.servers import free_port

TABLE_ASSETS = [
    "task_specs", "model_specs", "test_cases", "prompts", "completions", "scored_results", "points", "compression", "hazard",
    "surfaces", "projections", "leaderboard", "comparisons", "reasonscore",
]
SCOPE = ["--tasks", "boolean", "--tier", "easy", "--samples", "4"]
BIN = Path(sys.executable).parent  # dagster-webserver and dagster-daemon of this environment
CHROMIUM = shutil.which("chromium")




class GraphQL:
    def __init__(self, port: int, env: dict[str, str]):
        self.url = f"http://127.0.0.1:{port}"
        self.env = env  # the lab's environment, for more Dagster processes on its instance

    def __call__(self, query: str, **variables: Any) -> dict:
        body = json.dumps({"query": query, "variables": variables}).encode()
        request = urllib.request.Request(f"{self.url}/graphql", body, {"Content-Type": "application/json"})
        try:
            with urllib.request.urlopen(request, timeout=60) as response:
                answer = json.loads(response.read())
        except urllib.error.HTTPError as exc:
            raise AssertionError(f"{exc}: {exc.read().decode()[-3000:]}") from None
        assert "errors" not in answer, answer["errors"]
        return answer["data"]


def _wait_for_location(gql: GraphQL, server: subprocess.Popen, timeout_s: float = 300) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        assert server.poll() is None, "dagster-webserver exited"
        try:
            entries = gql("{ workspaceOrError { ... on Workspace { locationEntries { loadStatus locationOrLoadError { __typename } } } } }")
        except OSError:
            time.sleep(1)
            continue
        statuses = [(e["loadStatus"], e["locationOrLoadError"]["__typename"]) for e in entries["workspaceOrError"]["locationEntries"]]
        if statuses and all(status == "LOADED" for status, _ in statuses):
            assert all(kind == "RepositoryLocation" for _, kind in statuses), statuses
            return
        time.sleep(1)
    raise TimeoutError("the code location did not load")


def _lenient_or_oracle(oracle: Oracle):
    """`lenient` never writes the requested `ANSWER:` line: its value is read by the last-resort rule."""

    def reply(body: dict[str, Any]) -> Reply:
        if body["model"] == "lenient":
            return Reply(content=f"After thinking it over, I would say it is {oracle.lookup(body).answer}.")
        return oracle(body)

    return reply


@pytest.fixture(scope="module")
def ui(tmp_path_factory):
    """Two `rs eval` runs (a well-behaved model and a lenient one), then the webserver on their instance."""
    root = tmp_path_factory.mktemp("ui")
    oracle = Oracle(make_lab(root / "probe", {}), items_per_point=4)
    with ScriptedServer(_lenient_or_oracle(oracle), model_ids=("scripted", "lenient")) as llm:
        lab = make_lab(root / "lab", {"scripted": scripted_model(llm.base_url), "lenient": scripted_model(llm.base_url, served_model="lenient")})
        env = {**os.environ, **lab_env(lab)}
        for model in ("scripted", "lenient"):
            done = subprocess.run([*RS, "eval", "--model", model, *SCOPE], env=env, capture_output=True, text=True, timeout=900, cwd=PACKAGE_ROOT)
            assert done.returncode == 0, done.stderr[-3000:]
    port = free_port()
    server = subprocess.Popen(
        [BIN / "dagster-webserver", "-w", "workspace.yaml", "-h", "127.0.0.1", "-p", str(port)],
        env=env, cwd=PACKAGE_ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )
    try:
        gql = GraphQL(port, env)
        _wait_for_location(gql, server)
        yield gql
    finally:
        server.terminate()
        server.wait(timeout=60)


RUNS = """
query ($filter: RunsFilter) {
  runsOrError(filter: $filter) { ... on Runs { results { runId pipelineName status runConfigYaml tags { key value } } } }
}"""

JOB = """
query ($selector: PipelineSelector!) {
  pipelineOrError(params: $selector) {
    __typename
    ... on Pipeline { name isJob description runs { runId } partitionKeysOrError { ... on PartitionKeys { partitionKeys } } }
  }
}"""

REEXECUTE = """
mutation ($parent: String!) {
  launchPipelineReexecution(reexecutionParams: {parentRunId: $parent, strategy: ALL_STEPS}) {
    __typename
    ... on LaunchRunSuccess { run { runId pipelineName runConfigYaml tags { key value } } }
    ... on PythonError { message }
  }
}"""


def _tags(run: dict) -> dict[str, str]:
    return {tag["key"]: tag["value"] for tag in run["tags"]}


def test_cli_runs_are_listed_under_the_evaluation_job_with_their_partition_and_scope(ui):
    everything = ui(RUNS)["runsOrError"]["results"]
    assert {run["pipelineName"] for run in everything} == {"refresh_tasks", "refresh_models", "evaluation", "refresh_report"}
    runs = ui(RUNS, filter={"pipelineName": "evaluation"})["runsOrError"]["results"]
    assert sorted(_tags(run)["dagster/partition"] for run in runs) == ["lenient|boolean", "scripted|boolean"]
    for run in runs:
        tags = _tags(run)
        assert run["status"] == "SUCCESS" and tags["rs/source"] == "cli" and tags["rs/endpoint"].startswith("127.0.0.1:")
        assert tags["dagster/partition/model"] in ("scripted", "lenient") and tags["dagster/partition/task"] == "boolean"
        scope = yaml.safe_load(run["runConfigYaml"])["resources"]["scope"]["config"]
        assert scope == {"tiers": ["easy"], "precision": "4", "use_suite": True}  # the scope travels with the run

    repository = ui("{ repositoriesOrError { ... on RepositoryConnection { nodes { name location { name } } } } }")
    [node] = repository["repositoriesOrError"]["nodes"]
    selector = {"pipelineName": "evaluation", "repositoryName": node["name"], "repositoryLocationName": node["location"]["name"]}
    job = ui(JOB, selector=selector)["pipelineOrError"]
    assert job["isJob"] and "one model on one task" in job["description"]
    assert {run["runId"] for run in job["runs"]} == {run["runId"] for run in runs}  # the job's page lists the CLI's runs
    assert {"scripted|boolean", "lenient|boolean"} <= set(job["partitionKeysOrError"]["partitionKeys"])


ASSETS = """
{
  assetNodes {
    assetKey { path }
    description
    owners { ... on TeamAssetOwner { team } }
    tags { key value }
    metadataEntries { label ... on TableSchemaMetadataEntry { schema { columns { name type description constraints { nullable unique } } } } }
    assetChecksOrError { ... on AssetChecks { checks { name description blocking } } }
  }
}"""


def test_table_assets_publish_column_schemas_owners_and_checks(ui):
    nodes = {"/".join(node["assetKey"]["path"]): node for node in ui(ASSETS)["assetNodes"]}
    for name in TABLE_ASSETS:
        node = nodes[name]
        [schema] = [entry["schema"] for entry in node["metadataEntries"] if entry["label"] == "dagster/column_schema"]
        assert len(schema["columns"]) >= 5, name
        tags = {tag["key"]: tag["value"] for tag in node["tags"]}
        assert node["owners"] == [{"team": "evaluation"}] and tags["stage"] and tags["grain"] in ("task", "model", "model_task", "all"), name
        assert "partition" in node["description"].lower() or "unpartitioned" in node["description"].lower(), name
        checks = {check["name"]: check for check in node["assetChecksOrError"]["checks"]}
        assert checks["stored_rows_match_schema"]["blocking"], name
        assert all(len(check["description"]) > 40 for check in checks.values()), name
    scored = {c["name"]: c for c in nodes["scored_results"]["metadataEntries"][0]["schema"]["columns"]}
    assert scored["outcome"]["type"] == "String" and not scored["outcome"]["constraints"]["nullable"]
    assert scored["parse_rule"]["constraints"]["nullable"]
    assert set(LIMITS) < {check["name"] for check in nodes["scored_results"]["assetChecksOrError"]["checks"]}


MATERIALIZATIONS = """
query ($key: AssetKeyInput!) {
  assetOrError(assetKey: $key) {
    ... on Asset { assetMaterializations(limit: 1) { partition metadataEntries { label ... on IntMetadataEntry { intValue } } } }
  }
}"""

CHECK_EXECUTIONS = """
query ($key: AssetKeyInput!, $name: String!) {
  assetCheckExecutions(assetKey: $key, checkName: $name, limit: 10) {
    status partition runId
    evaluation { severity description metadataEntries { label ... on FloatMetadataEntry { floatValue } ... on IntMetadataEntry { intValue } } }
  }
}"""


def test_materializations_carry_row_counts_and_checks_run_per_partition(ui):
    for name in TABLE_ASSETS:
        [materialization] = ui(MATERIALIZATIONS, key={"path": [name]})["assetOrError"]["assetMaterializations"]
        counts = {e["label"]: e.get("intValue") for e in materialization["metadataEntries"]}
        assert counts["dagster/row_count"] >= 0, name  # easy boolean points form no surface: an empty table
        if materialization["partition"]:
            assert 0 < counts["dagster/partition_row_count"] <= counts["dagster/row_count"], name

    schema_checks = ui(CHECK_EXECUTIONS, key={"path": ["scored_results"]}, name="stored_rows_match_schema")["assetCheckExecutions"]
    assert {(e["partition"], e["status"]) for e in schema_checks} == {("scripted|boolean", "SUCCEEDED"), ("lenient|boolean", "SUCCEEDED")}


def test_a_partition_answered_outside_the_requested_form_warns(ui):
    executions = ui(CHECK_EXECUTIONS, key={"path": ["scored_results"]}, name="lenient_parse_share")["assetCheckExecutions"]
    by_partition = {e["partition"]: e for e in executions}
    lenient, scripted = by_partition["lenient|boolean"], by_partition["scripted|boolean"]
    assert lenient["status"] == "FAILED" and lenient["evaluation"]["severity"] == "WARN"
    metadata = {e["label"]: e.get("floatValue", e.get("intValue")) for e in lenient["evaluation"]["metadataEntries"]}
    assert metadata["share"] == 1.0 and metadata["count"] == metadata["of"] == 8 and metadata["rule/last_value"] == 8
    assert "8 of 8" in lenient["evaluation"]["description"]
    assert scripted["status"] == "SUCCEEDED"  # one reply in four outside the form: within the limit


RUN = """
query ($runId: ID!) { runOrError(runId: $runId) { ... on Run { status } } }
"""


def test_the_ui_re_executes_a_cli_run_with_its_partition_and_scope(ui):
    """What the run page's Re-execute button sends; last in this module, as the new run adds check executions."""
    [parent] = ui(RUNS, filter={"pipelineName": "evaluation", "tags": [{"key": "dagster/partition", "value": "scripted|boolean"}]})["runsOrError"]["results"]
    launched = ui(REEXECUTE, parent=parent["runId"])["launchPipelineReexecution"]
    assert launched["__typename"] == "LaunchRunSuccess", launched
    child = launched["run"]
    assert child["pipelineName"] == "evaluation" and child["runConfigYaml"] == parent["runConfigYaml"]
    assert _tags(child)["dagster/partition"] == "scripted|boolean" and _tags(child)["dagster/parent_run_id"] == parent["runId"]
    # The lab's instance queues runs (one per endpoint); the daemon starts them, as under `dagster dev`.
    daemon = subprocess.Popen([BIN / "dagster-daemon", "run", "-w", "workspace.yaml"], env=ui.env, cwd=PACKAGE_ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 420
        while (status := ui(RUN, runId=child["runId"])["runOrError"]["status"]) not in ("SUCCESS", "FAILURE", "CANCELED"):
            assert time.monotonic() < deadline, status
            time.sleep(2)
    finally:
        daemon.terminate()
        daemon.wait(timeout=60)
    assert status == "SUCCESS"  # every answer from the response cache: the model's server is gone by now


@pytest.mark.skipif(CHROMIUM is None, reason="Debian's chromium is not installed (scripts/setup.sh installs it)")
def test_the_ui_draws_a_partitions_chart_from_its_materialization_metadata(ui):
    """The charts in materialization metadata (SVG in markdown) are drawn by the Dagster UI in a real browser."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        try:
            page = browser.new_page(viewport={"width": 1400, "height": 1000})
            errors: list[str] = []
            page.on("pageerror", lambda error: errors.append(str(error)))
            # Dagster's "Join the Dagster community" dialog opens a second after the first page of a
            # new instance and covers the page; a user skips it, and so does this test whenever it shows.
            page.add_locator_handler(page.get_by_text("Join the Dagster community"), lambda: page.get_by_role("button", name="Skip").click())
            page.goto(f"{ui.url}/assets/hazard?partition=scripted%7Cboolean&view=events", wait_until="networkidle", timeout=120_000)
            page.wait_for_timeout(1500)  # past the dialog's delay, so that a covered page is the rule, not a race
            page.get_by_text("[Show Markdown]").first.click()
            chart = page.locator("img[alt='survival and hazard over tokens']")
            chart.wait_for(timeout=60_000)
            page.wait_for_function("image => image.complete && image.naturalWidth > 300 && image.naturalHeight > 300", arg=chart.element_handle())
            assert chart.get_attribute("src").startswith("data:image/svg+xml;base64,")
            assert errors == []
        finally:
            browser.close()
