"""The explorer in headless Chromium (Debian's `chromium`, driven by Playwright): every view loads with no
console error and draws its Vega charts, a user clicks leaderboard → task → point → sample and reads the
values stored in DuckDB, and the exported report opens from file:// with no network request."""

from __future__ import annotations

import shutil
from pathlib import Path

import duckdb
import pytest
from explore_lab import explored_lab
from watched_tables import NIGHTS, SUMMARIES, TOKENS_RISE, write_watched

from rs_dagster.explore import views
from rs_dagster.explore.app import running
from rs_dagster.explore.export import export
from rs_dagster.storage.warehouse import Warehouse

CHROMIUM = shutil.which("chromium")
pytestmark = pytest.mark.skipif(CHROMIUM is None, reason="Debian's chromium is not installed (scripts/setup.sh installs it)")


@pytest.fixture(scope="module")
def lab(tmp_path_factory):
    with explored_lab(tmp_path_factory.mktemp("explore_browser")) as settings:
        yield settings


@pytest.fixture(scope="module")
def browser():
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        yield launched
        launched.close()


class Page:
    """A page that records console errors, page errors and every request it makes."""

    def __init__(self, browser):
        self.page = browser.new_page(viewport={"width": 1280, "height": 900})
        self.errors: list[str] = []
        self.requests: list[str] = []
        self.page.on("console", lambda message: message.type == "error" and self.errors.append(message.text))
        self.page.on("pageerror", lambda error: self.errors.append(str(error)))
        self.page.on("request", lambda request: self.requests.append(request.url))

    def open(self, url: str) -> None:
        """Go to `url` and wait until its view is rendered and every chart on it is drawn."""
        self.page.goto(url)
        self.ready()

    def ready(self) -> None:
        self.page.wait_for_function("document.body.dataset.ready === (location.hash.replace(/^#/, '') || '/')")
        self.page.wait_for_function(
            "[...document.querySelectorAll('.chart .vega')].every(c => c.querySelector('svg, canvas') || c.querySelector('.error'))"
        )

    def click(self, selector: str) -> None:
        self.page.click(selector)
        self.ready()

    def text(self, selector: str) -> str:
        return self.page.inner_text(selector).strip()


def test_every_view_loads_without_console_errors_and_draws_its_charts(lab, browser):
    with running(lab.db_path) as url:
        page = Page(browser)
        point = Warehouse(lab.db_path).query("SELECT point_id FROM points WHERE model = 'alpha' AND task = 'arithmetic' LIMIT 1")["point_id"][0]
        sample = Warehouse(lab.db_path).query("SELECT test_case_id FROM scored_results WHERE model = 'alpha' LIMIT 1")["test_case_id"][0]
        task = Warehouse(lab.db_path).query("SELECT task FROM scored_results WHERE test_case_id = ?", [sample])["task"][0]
        for route, charts in [
            ("#/", 2), ("#/task/arithmetic", 2), ("#/task/boolean", 2), (f"#/point/alpha/arithmetic/{point}", 0),
            (f"#/sample/alpha/{task}/{sample}/0", 0), ("#/compare/alpha/beta", 1),
        ]:
            page.open(url + route)
            drawn = page.page.locator(".chart .vega svg").count()
            assert drawn >= charts, (route, drawn)
            assert not page.errors, (route, page.errors)
            assert not page.page.locator(".error").count(), route
        assert all(r.startswith(url) for r in page.requests), [r for r in page.requests if not r.startswith(url)]


def test_click_through_leaderboard_task_point_sample_shows_the_stored_values(lab, browser):
    warehouse = Warehouse(lab.db_path)
    with running(lab.db_path) as url:
        page = Page(browser)
        page.open(url)
        board = warehouse.query("SELECT * FROM leaderboard WHERE model = 'alpha' AND task = 'boolean' AND tier = 'easy'").row(0, named=True)
        first = page.page.locator('[data-table="leaderboard"] tbody tr', has_text="boolean").filter(has_text="alpha").first
        assert views.interval(board["accuracy"], board["ci_low"], board["ci_high"]) in first.inner_text()

        page.click('[data-table="leaderboard"] a[href="#/task/boolean"]')
        assert page.text("h1") == "Task boolean"
        # Pick axes and models: another projection, one model hidden.
        projections = page.page.locator('select[aria-label="Projection"] option')
        page.page.select_option('select[aria-label="Projection"]', index=projections.count() - 1)
        page.page.locator('.models input[value="beta"]').first.uncheck()
        page.page.wait_for_function("document.querySelector('.chart .vega svg')")

        row = page.page.locator('[data-table="points"] tbody tr', has_text="alpha").first
        row.locator("a").click()
        page.ready()
        point_id = page.text('[data-field="point_id"]')
        point = warehouse.query("SELECT * FROM points WHERE model = 'alpha' AND point_id = ?", [point_id]).row(0, named=True)
        assert page.text('[data-field="accuracy"]') == views.interval(point["accuracy"], point["ci_low"], point["ci_high"])
        assert page.page.locator('[data-table="samples"] tbody tr').count() == point["n"]
        # outcome cells carry their outcome's colour class (style.css: .outcome-correct, .outcome-ambiguous, ...)
        cell = page.page.locator('[data-table="samples"] tbody tr:first-child td').nth(1)
        assert cell.get_attribute("class") == f"outcome-{cell.inner_text().strip()}"

        page.click('[data-table="samples"] tbody tr:first-child a')
        test_case_id = page.text('[data-field="test_case_id"]')
        scored = warehouse.query(
            "SELECT * FROM scored_results WHERE model = 'alpha' AND test_case_id = ? AND sample_index = 0", [test_case_id]
        ).row(0, named=True)
        assert page.text('[data-field="parsed_answer"]') == (scored["parsed_answer"] or "—")
        assert page.text('[data-field="outcome"]') == scored["outcome"]
        assert page.page.get_attribute('[data-field="outcome"]', "class") == f"outcome-{scored['outcome']}"
        assert page.text('[data-field="scoring_version"]') == scored["scoring_version"]
        assert page.text('[data-field="dagster_run_id"]') == scored["dagster_run_id"]
        assert scored["point_id"] == point_id
        assert not page.errors, page.errors


def test_the_exported_report_opens_from_file_with_no_network_request(lab, browser):
    index = Path(lab.report_dir) / "index.html"
    page = Page(browser)
    page.open(index.as_uri())
    assert page.text("h1") == "Leaderboard" and page.page.locator(".chart .vega svg").count() >= 2
    page.click('[data-table="leaderboard"] a[href="#/task/arithmetic"]')
    page.click('[data-table="points"] tbody tr:first-child a')
    page.click('[data-table="samples"] tbody tr:first-child a')
    assert page.text('[data-field="test_case_id"]')
    page.open(index.as_uri() + "#/compare/alpha/beta")
    assert page.page.locator('[data-table="paired"]').count() == 1
    assert page.requests and all(r.startswith("file://") for r in page.requests), [r for r in page.requests if not r.startswith("file://")]
    assert not page.errors, page.errors


def test_an_export_updated_incrementally_opens_from_file_with_the_new_values(lab, browser, tmp_path):
    """One point's accuracy changed and the report exported again: only its task's views are rebuilt, and the
    page shows the new value there and the kept views of the other task, from file:// alone."""
    db = tmp_path / "lab.duckdb"
    shutil.copy(lab.db_path, db)
    out = tmp_path / "report"
    export(db, out, samples_per_point=2, cache_dir=lab.cache_dir)
    point = Warehouse(db).query("SELECT point_id FROM points WHERE model = 'alpha' AND task = 'arithmetic' ORDER BY point_id LIMIT 1")["point_id"][0]
    with duckdb.connect(str(db)) as con:
        con.execute("UPDATE points SET accuracy = 0.123 WHERE model = 'alpha' AND task = 'arithmetic' AND point_id = ?", [point])
    assert export(db, out, samples_per_point=2, cache_dir=lab.cache_dir).rebuilt_groups == ["/task/arithmetic"]
    index = (out / "index.html").as_uri()
    page = Page(browser)
    page.open(f"{index}#/point/alpha/arithmetic/{point}")
    assert page.text('[data-field="accuracy"]').startswith("0.123 [")
    page.open(index)
    page.click('[data-table="leaderboard"] a[href="#/task/boolean"]')
    page.click('[data-table="points"] tbody tr:first-child a')
    page.click('[data-table="samples"] tbody tr:first-child a')
    assert page.text('[data-field="test_case_id"]')
    assert page.requests and all(r.startswith("file://") for r in page.requests)
    assert not page.errors, page.errors


def _seeded_sample(warehouse: Warehouse) -> dict:
    """A sample of alpha whose item's seed is beyond 2**53, where a JavaScript number rounds it."""
    found = warehouse.query(
        "SELECT s.task, s.test_case_id, t.seed FROM scored_results s JOIN test_cases t USING (test_case_id) "
        "WHERE s.model = 'alpha' AND s.sample_index = 0 AND t.seed > 9007199254740993 ORDER BY s.test_case_id LIMIT 1"
    )
    assert found.height == 1
    return found.row(0, named=True)


def test_a_seed_beyond_2_53_is_shown_exactly_in_the_explorer_and_the_exported_report(lab, browser):
    """An audited item is regenerated from its seed: the page shows the stored 64-bit seed digit for digit
    (as JSON numbers they arrive rounded, ...132404 as ...132400)."""
    warehouse = Warehouse(lab.db_path)
    sample = _seeded_sample(warehouse)
    route = f"#/sample/alpha/{sample['task']}/{sample['test_case_id']}/0"
    with running(lab.db_path) as url:
        page = Page(browser)
        page.open(url + route)
        assert page.text('[data-field="seed"]') == str(sample["seed"])
        assert not page.errors, page.errors

    page = Page(browser)  # the exported report, opened from file://: the first samples of each point
    page.open((Path(lab.report_dir) / "index.html").as_uri())
    page.click('[data-table="leaderboard"] a[href="#/task/arithmetic"]')
    page.click('[data-table="points"] tbody tr:first-child a')
    page.click('[data-table="samples"] tbody tr:first-child a')
    shown = page.text('[data-field="test_case_id"]')
    [stored] = warehouse.query("SELECT seed FROM test_cases WHERE test_case_id = ?", [shown])["seed"].to_list()
    assert stored > 2**53
    assert page.text('[data-field="seed"]') == str(stored)
    assert not page.errors, page.errors


def test_the_nights_view_draws_accuracy_per_night_with_its_drift_markers_and_alarms(lab, browser, tmp_path):
    """From the leaderboard's watched models to alpha's nights: the charts drawn, a ▼ per night with a drift
    alarm, the latest night's alarm, and each task's nights in a table."""
    db = tmp_path / "watched.duckdb"
    shutil.copy(lab.db_path, db)
    write_watched(db)
    with running(db, cache_dir=lab.cache_dir) as url:
        page = Page(browser)
        page.open(url)
        page.click('[data-table="watched"] a[href="#/nights/alpha"]')
        assert page.text("h1") == "Nights of alpha"
        for name in ("nights-accuracy", "nights-usage"):
            assert page.page.locator(f'[data-chart="{name}"] .vega svg').count() == 1, name
        markers = page.page.locator('[data-chart="nights-accuracy"] svg .drift_markers_marks path')
        assert markers.count() == len(SUMMARIES)  # one ▼ per drifted night, all on arithmetic
        assert page.page.locator('[data-chart="nights-accuracy"] svg .server_changes_marks line, '
                                 '[data-chart="nights-accuracy"] svg .server_changes_marks path').count() == 1
        alarm = page.text('[data-table="alarms"] tbody tr')
        assert "output_tokens" in alarm and TOKENS_RISE in alarm
        assert page.page.locator('[data-table="nights"] tbody tr').count() == len(NIGHTS)
        assert SUMMARIES[NIGHTS[2]] in page.text('[data-table="nights"]')
        page.page.select_option('select[aria-label="Task"]', label="boolean")
        assert "drift alarm" not in page.text('[data-table="nights"]')
        assert not page.errors, page.errors
        assert not page.page.locator(".error").count()
