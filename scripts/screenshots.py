"""Screenshots of each explorer view, 1280 px wide, in headless Chromium: docs/screenshots/<view>.png.

Leaderboard, task, point and sample come from the lab's DuckDB (RS_DB / RS_HOME, as `rs` resolves them;
the demo's SmolLM2 evaluation by default); the two-models view from the same lab when it has two models,
else from the tests' lab of two scripted models (evaluated here, about 30 s). The nights view of a watched
model (nights.png) comes from the lab given with --nights, alone; without a path, from the tests' watched lab
(tests/nights_lab.py: 22 simulated nights of a scripted hosted model through the `watched_nights` schedule,
a 10-point drop on arithmetic on night 21 and a new fingerprint on night 22; about 2 minutes).

    python scripts/screenshots.py [--out docs/screenshots] [--task arithmetic]
    python scripts/screenshots.py --nights [PATH/lab.duckdb] [--model M] [--out docs/screenshots]
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
SIMULATED = Path("simulated nights")


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


def chromium_path() -> str:
    chromium = shutil.which("chromium")
    if chromium is None:
        raise SystemExit("Debian's chromium is not installed (scripts/setup.sh installs it)")
    return chromium


def nights_screenshot(db_path: Path, out: Path, model: str | None = None) -> None:
    """`out`/nights.png: the nights view of `model` (default: the first watched one) in the lab at `db_path`."""
    from playwright.sync_api import sync_playwright

    watched = LabData(db_path).nights()
    if watched.is_empty():
        raise SystemExit(f"{db_path}: no watched model (the nights table is missing or empty)")
    out.mkdir(parents=True, exist_ok=True)
    with running(db_path) as url, sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=chromium_path(), args=["--no-sandbox"])
        shoot(browser, f"{url}#{route('nights', model or watched['model'][0])}", out / "nights.png")
        browser.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, default=PACKAGE_ROOT / "docs" / "screenshots")
    parser.add_argument("--task", help="the task whose views are shown (default: the first with results)")
    parser.add_argument("--nights", type=Path, metavar="DB", nargs="?", const=SIMULATED,
                        help="shoot only the nights view (nights.png), from the lab at this DuckDB path (none: the tests' simulated nights)")
    parser.add_argument("--model", help="with --nights: the watched model shown (default: the first)")
    args = parser.parse_args()
    if args.nights == SIMULATED:
        sys.path.insert(0, str(PACKAGE_ROOT / "tests"))
        from nights_lab import watched_lab

        with tempfile.TemporaryDirectory(prefix="rs-nights-") as root, watched_lab(Path(root)) as lab:
            nights_screenshot(lab.db_path, args.out, args.model)
        return
    if args.nights:
        nights_screenshot(args.nights, args.out, args.model)
        return
    chromium = chromium_path()
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
