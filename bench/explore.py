"""How long the explorer takes to open a grid point with 10,000 samples.

A real scripted evaluation (one model, arithmetic's easy tier, 8 items per point) through Dagster, then one
point's scored_results and completions rows replicated in the bench's own DuckDB file (new sample_index
and request_hash per copy) until it holds --samples samples, its `points` row updated to match. Measured:
the API's response time for the point (first page of 200 samples, and the last page) and for one sample,
and the time headless Chromium takes to render the point view (goto until the view and its charts are
drawn), and the export of the whole lab as the report folder. Each figure is the median of --repeat runs.

    python bench/explore.py [--samples 10000] [--repeat 5]
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

import dagster as dg
import duckdb

from rs_dagster.defs.resources import EvalScope
from rs_dagster.explore.app import running
from rs_dagster.explore.export import export
from rs_dagster.orchestrate import evaluate
from rs_dagster.settings import PACKAGE_ROOT
from rs_dagster.testing.scripted_server import Reply, ScriptedServer

sys.path.insert(0, str(PACKAGE_ROOT / "tests"))
from helpers import make_lab, scripted_model  # the tests' lab builder


def build(root: Path, samples: int) -> tuple[Path, str, str]:
    """The lab's DuckDB file and the (task, point_id) of the point grown to `samples` samples."""
    with ScriptedServer(lambda body: Reply(content="Adding them up.\n\nANSWER: 42")) as server, dg.instance_for_test() as instance:
        settings = make_lab(root, {"bench": scripted_model(server.base_url)}, tasks=("arithmetic",))
        evaluate(settings, instance, ["bench"], ["arithmetic"], EvalScope(tiers=["easy"], precision="8"))
    with duckdb.connect(str(settings.db_path)) as con:
        point_id, n = con.execute("SELECT point_id, n FROM points ORDER BY point_id LIMIT 1").fetchone()  # type: ignore[misc]
        copies = -(-samples // n)
        cases = "SELECT test_case_id FROM test_cases WHERE point_id = $point"
        for table in ("scored_results", "completions"):
            con.execute(
                f"""INSERT INTO {table} SELECT t.* REPLACE (t.sample_index + r.copy AS sample_index, t.request_hash || '-' || r.copy AS request_hash)
                    FROM {table} t, range(1, $copies) r(copy) WHERE t.test_case_id IN ({cases})""",
                {"copies": copies, "point": point_id},
            )
        total = con.execute(f"SELECT count(*) FROM scored_results WHERE test_case_id IN ({cases})", {"point": point_id}).fetchone()[0]  # type: ignore[index]
        con.execute("UPDATE points SET n = $n, answered = $n, incorrect = $n - correct - unparsed - ambiguous WHERE point_id = $point", {"n": total, "point": point_id})
    return settings.db_path, "arithmetic", point_id


def timed(action, repeat: int) -> float:
    runs = []
    for _ in range(repeat):
        started = time.perf_counter()
        action()
        runs.append(time.perf_counter() - started)
    return statistics.median(runs)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--samples", type=int, default=10_000)
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    root = Path(tempfile.mkdtemp(prefix="rs-bench-explore-"))
    try:
        db_path, task, point_id = build(root / "lab", args.samples)
        exported = export(db_path, root / "report")  # the first export also builds the cached Vega bundle
        print(f"export, {len(exported.routes)} views: {timed(lambda: export(db_path, root / 'report'), args.repeat) * 1000:.0f} ms")
        with running(db_path) as url:
            def get(path: str) -> dict:
                with urllib.request.urlopen(url + "api" + path) as response:
                    return json.load(response)

            first = get(f"/point/bench/{task}/{point_id}")
            pager = next(b for b in first["blocks"] if b["type"] == "pager")
            sample = next(b for b in first["blocks"] if b.get("name") == "samples")["rows"][0][0]["href"].lstrip("#")
            print(f"point {point_id}: {pager['total']} samples, {pager['pages']} pages")
            print(f"API, point view, first page: {timed(lambda: get(f'/point/bench/{task}/{point_id}'), args.repeat) * 1000:.0f} ms")
            last = f"/point/bench/{task}/{point_id}?page={pager['pages']}"
            print(f"API, point view, last page:  {timed(lambda: get(last), args.repeat) * 1000:.0f} ms")
            print(f"API, one sample:             {timed(lambda: get(sample), args.repeat) * 1000:.0f} ms")
            chromium = shutil.which("chromium")
            if chromium is None:
                print("browser: skipped (Debian's chromium is not installed)")
                return
            from playwright.sync_api import sync_playwright

            with sync_playwright() as playwright:
                browser = playwright.chromium.launch(executable_path=chromium, args=["--no-sandbox"])
                page = browser.new_page()
                page.goto(url)
                page.wait_for_function("document.body.dataset.ready")

                def open_point() -> None:
                    page.goto("about:blank")
                    page.goto(f"{url}#/point/bench/{task}/{point_id}")
                    page.wait_for_function("document.body.dataset.ready && document.body.dataset.ready.startsWith('/point/')")
                    page.wait_for_function("[...document.querySelectorAll('.chart .vega')].every(c => c.querySelector('svg'))")

                print(f"browser, point view rendered: {timed(open_point, args.repeat) * 1000:.0f} ms (page load included)")
                browser.close()
    finally:
        shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
