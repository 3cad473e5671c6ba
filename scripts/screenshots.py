"""Screenshots of each explorer view, 1280 px wide, in headless Chromium: docs/screenshots/<view>.png.

Leaderboard, task, point and sample come from the lab's DuckDB (RS_DB / RS_HOME, as `rs` resolves them;
the demo's SmolLM2 evaluation by default); the two-models view from the same lab when it has two models,
else from the tests' lab of two scripted models (evaluated here, about 30 s).

    python scripts/screenshots.py [--out docs/screenshots] [--task arithmetic]
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
from contextlib import ExitStack
from pathlib import Path

from rs_dagster.explore.app import running
from rs_dagster.explore.queries import LabData
from rs_dagster.explore.views import route
from rs_dagster.settings import PACKAGE_ROOT, Settings

WIDTH = 1280


def shoot(browser, url: str, path: Path) -> None:
    page = browser.new_page(viewport={"width": WIDTH, "height": 900})
    errors: list[str] = []
    page.on("console", lambda message: message.type == "error" and errors.append(message.text))
    page.goto(url)
    page.wait_for_function("document.body.dataset.ready")
    page.wait_for_function("[...document.querySelectorAll('.chart .vega')].every(c => c.querySelector('svg'))")
    page.screenshot(path=str(path), full_page=True)
    page.close()
    if errors:
        raise SystemExit(f"{url}: console errors {errors}")
    print(f"{path}  ({url.split('#', 1)[-1]})")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, default=PACKAGE_ROOT / "docs" / "screenshots")
    parser.add_argument("--task", help="the task whose views are shown (default: the first with results)")
    args = parser.parse_args()
    chromium = shutil.which("chromium")
    if chromium is None:
        raise SystemExit("Debian's chromium is not installed (scripts/setup.sh installs it)")
    from playwright.sync_api import sync_playwright

    db_path = Settings.from_env().db_path
    lab = LabData(db_path)
    task = args.task or lab.tasks()[0]
    points = lab.points(task).sort("n", "point_id", descending=[True, False])
    model, point_id = points.row(0, named=True)["model"], points.row(0, named=True)["point_id"]
    sample = lab.samples(model, task, point_id, 0, 1).row(0, named=True)
    args.out.mkdir(parents=True, exist_ok=True)
    with ExitStack() as stack:
        compare_db = db_path
        if len(lab.models()) < 2:  # evaluated before Playwright starts: its event loop would stop the evaluation's
            sys.path.insert(0, str(PACKAGE_ROOT / "tests"))
            from explore_lab import explored_lab

            root = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="rs-screenshots-")))
            compare_db = stack.enter_context(explored_lab(root)).db_path
        url, compare_url = stack.enter_context(running(db_path)), stack.enter_context(running(compare_db))
        playwright = stack.enter_context(sync_playwright())
        browser = playwright.chromium.launch(executable_path=chromium, args=["--no-sandbox"])
        for name, target in [
            ("leaderboard", "/"), ("task", route("task", task)), ("point", route("point", model, task, point_id)),
            ("sample", route("sample", model, task, sample["test_case_id"], sample["sample_index"])),
        ]:
            shoot(browser, f"{url}#{target}", args.out / f"{name}.png")
        models = LabData(compare_db).models()
        shoot(browser, f"{compare_url}#{route('compare', models[0], models[1])}", args.out / "compare.png")
        browser.close()


if __name__ == "__main__":
    main()
