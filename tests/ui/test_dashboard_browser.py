"""The dashboard in a real headless Chromium (Debian's ``chromium``, driven by Playwright) on a
real ``tether dev`` with ``TETHER_TOKEN`` set: sign in, the runs list (live, filtered,
searched, counted), a run's timeline, a record, approving a paused run by clicking until it
completes, the operations page, and a fork from a record. A screenshot of each page is kept
in ``test-artifacts/ui/`` (gitignored).

Without Chromium or Playwright these tests skip, saying how to enable them:
``apt-get install -y chromium`` and ``pip install -e '.[dev]'`` (``.ci/run`` does both).
"""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from ui_engine import ROOT, start, status_is, ui_engine, wait_until

CHROMIUM = "/usr/bin/chromium"
ENABLE = (
    "the dashboard's browser tests need Debian's Chromium and Playwright for Python: "
    "apt-get install -y chromium && pip install -e '.[dev]' (never `playwright install`)"
)
if not Path(CHROMIUM).exists():
    pytest.skip(f"{CHROMIUM} is missing; {ENABLE}", allow_module_level=True)
sync_api = pytest.importorskip("playwright.sync_api", reason=f"playwright is missing; {ENABLE}")

TOKEN = "dashboard-token-of-24-chars"
ARTIFACTS = ROOT / "test-artifacts" / "ui"
ARGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
]  # fmt: skip
#: How long a page may take to show what the engine already holds (polled every 2 s).
SHOWN_MS = 15_000


@pytest.fixture(scope="module")
def engine(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    with ui_engine(tmp_path_factory.mktemp("dashboard"), {"TETHER_TOKEN": TOKEN}) as e:
        yield e


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    shutil.rmtree(ARTIFACTS, ignore_errors=True)
    ARTIFACTS.mkdir(parents=True)
    with sync_api.sync_playwright() as p:
        chromium = p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        try:
            yield chromium
        finally:
            chromium.close()


@pytest.fixture
def page(browser: Any, engine: Any) -> Iterator[Any]:
    """A laptop-sized tab signed in with the token link (``/ui#token=...``)."""
    context = browser.new_context(viewport={"width": 1366, "height": 800})
    tab = context.new_page()
    tab.set_default_timeout(SHOWN_MS)
    errors: list[str] = []
    tab.on("pageerror", lambda e: errors.append(str(e)))
    tab.goto(f"{engine.url}/ui#token={TOKEN}")
    tab.wait_for_selector("#runs tbody tr")
    yield tab
    context.close()
    assert errors == [], errors  # no script error on any page the test visited


def shot(tab: Any, name: str) -> None:
    tab.screenshot(path=str(ARTIFACTS / f"{name}.png"), full_page=True)


def test_sign_in_asks_for_the_token_and_keeps_it_out_of_the_address(
    browser: Any, engine: Any
) -> None:
    context = browser.new_context(viewport={"width": 1366, "height": 800})
    tab = context.new_page()
    tab.set_default_timeout(SHOWN_MS)
    tab.goto(f"{engine.url}/ui")
    tab.wait_for_selector("#login:not([hidden])")
    tab.fill("#token", "wrong-token-of-24-chars!!")
    tab.click("#login button[type=submit]")
    tab.wait_for_selector("#login-error:has-text('refused')")
    shot(tab, "0-sign-in-refused")
    tab.fill("#token", TOKEN)
    tab.click("#login button[type=submit]")
    tab.wait_for_selector("#runs")
    assert tab.is_hidden("#login")
    tab.goto(f"{engine.url}/ui#token={TOKEN}")
    tab.wait_for_selector("#runs")
    assert TOKEN not in tab.url  # the link's fragment is dropped once read
    context.close()


CLEARED_WITH_BOTH_RUNS = """() =>
  document.querySelector("#filters select[name=status]").value === ""
  && document.querySelector("#runs tr[data-id='br-steps']") !== null
  && document.querySelector("#runs tr[data-id='br-pay']") !== null"""
ONLY_BR_STEPS = """() => {
  const rows = document.querySelectorAll("#runs tbody tr");
  return rows.length === 1 && rows[0].dataset.id === "br-steps";
}"""


def test_runs_list_live_filters_search_and_a_run(page: Any, engine: Any) -> None:
    with engine.client() as c:
        done = start(c, "steps", 5, execution_id="br-steps")
        wait_until(lambda: status_is(c, done, "completed"), "steps completes")
        paused = start(c, "pay", 2, execution_id="br-pay")
        wait_until(lambda: status_is(c, paused, "paused"), "pay pauses")
        # Live: both appear without a reload.
        page.wait_for_selector("#runs tr[data-id='br-steps']")
        page.wait_for_selector("#runs tr[data-id='br-pay'] [data-status='paused']")
        page.wait_for_selector("#counts [data-count='paused']")
        shot(page, "1-runs")

        page.select_option("#filters select[name=status]", "paused")
        page.click("#filters button[type=submit]")
        page.wait_for_selector("#runs tr[data-id='br-steps']", state="detached")
        page.wait_for_selector("#runs tr[data-id='br-pay']")
        page.click("#filters button[type=button]")  # clear
        # The hash changes at once but the view is rebuilt on the next hashchange task: wait
        # for the rebuilt view (no status chosen, both runs listed), not the old one's rows.
        page.wait_for_function(CLEARED_WITH_BOTH_RUNS)
        page.fill("#filters input[name=q]", "BR-STE")
        page.click("#filters button[type=submit]")
        page.wait_for_function(ONLY_BR_STEPS)  # only the id that matches
        shot(page, "2-runs-searched")

        page.click("#runs tr[data-id='br-steps'] a")
        page.wait_for_selector("#run-header [data-status='completed']")
        page.wait_for_selector(
            ".tl-row[data-node='second'][data-attempt='2'][data-outcome='completed']"
        )
        assert page.locator(".tl-row[data-node='second'][data-outcome='retrying']").count() == 1
        assert page.locator(".tl-row .tl-bar.run").count() == 3  # first, second twice
        shot(page, "3-run-timeline")

        page.click("#journal tr[data-type='node_completed']")
        page.wait_for_selector('#record-json:has-text(\'"node_id": "first"\')')
        page.wait_for_selector("#state-json, #state-missing")
        shot(page, "4-record")


def test_approve_a_paused_run_by_clicking(page: Any, engine: Any) -> None:
    with engine.client() as c:
        eid = start(c, "pay", 41, execution_id="br-approve")
        wait_until(lambda: status_is(c, eid, "paused"), "pay pauses")
        page.click("nav a[data-nav=approvals]")
        card = page.locator(f"#approvals .approval[data-id='{eid}']")
        card.wait_for()
        shot(page, "5-approvals")
        card.locator("input[name=user_id]").fill("ann")
        card.locator("input[name=comment]").fill("looks right")
        card.locator("input[name=state_patch]").fill("{not json")
        card.locator("button[data-decision=approved]").click()
        card.locator(".error:has-text('not JSON')").wait_for()  # refused in the page
        card.locator("input[name=state_patch]").fill('{"n": 1}')
        card.locator("button[data-decision=approved]").click()
        card.locator(".error:has-text('does not let a decision set')").wait_for()  # by the API
        assert status_is(c, eid, "paused")  # nothing was decided
        card.locator("input[name=state_patch]").fill("")
        card.locator("button[data-decision=approved]").click()
        card.wait_for(state="detached")
        view = wait_until(lambda: status_is(c, eid, "completed"), "approved run completes")
        assert view["current_state"]["n"] == 42
        [decided] = c.get(f"/executions/{eid}/approvals").json()["decided"]
        assert (decided["user_id"], decided["comment"]) == ("ann", "looks right")
        page.goto(f"{engine.url}/ui#/run/{eid}")
        page.wait_for_selector("#run-header [data-status='completed']")
        page.wait_for_selector(".tl-row[data-kind='approval'][data-outcome='approved']")
        shot(page, "6-approved-run")


def test_failure_traceback_and_operations_page(page: Any, engine: Any) -> None:
    with engine.client() as c:
        eid = start(c, "broken", 3, execution_id="br-broken")
        wait_until(lambda: status_is(c, eid, "failed"), "broken run fails")
        c.post(
            "/schedules",
            json={
                "schedule_id": "nightly",
                "cron": "0 2 * * *",
                "workflow_id": "steps",
                "input": {"n": 1},
            },
        ).raise_for_status()
        page.goto(f"{engine.url}/ui#/run/{eid}")
        page.wait_for_selector("#failure .traceback:has-text('ValueError: boom: 3')")
        shot(page, "7-failed-run")
        page.click("nav a[data-nav=operations]")
        page.wait_for_selector(f"#dead-letters tr[data-item='{eid}/only/2']")
        page.wait_for_selector("#queues tbody tr")
        page.wait_for_selector("#workers tbody tr")
        row = page.locator("#schedules tr[data-schedule='nightly']")
        row.locator("button:has-text('Pause')").click()
        row.locator("td:has-text('paused')").wait_for()
        assert c.get("/schedules").json()["schedules"][0]["paused"] is True
        shot(page, "8-operations")
        row.locator("button:has-text('Resume')").click()
        row.locator("td:has-text('active')").wait_for()


def test_fork_from_a_record(page: Any, engine: Any) -> None:
    with engine.client() as c:
        eid = start(c, "steps", 10, execution_id="br-fork")
        wait_until(lambda: status_is(c, eid, "completed"), "run completes")
        page.goto(f"{engine.url}/ui#/run/{eid}")
        page.wait_for_selector("#journal tr[data-type='node_completed']")
        page.locator("#journal tr[data-type='node_completed']").first.click()
        page.wait_for_selector("#state-json")  # the state at that record, from its route
        page.click("#fork")
        page.wait_for_selector(f"#run-header a:has-text('{eid} at record')")
        forked = page.url.split("#/run/")[1].split("?")[0]
        assert forked != eid
        view = wait_until(lambda: status_is(c, forked, "completed"), "fork completes")
        assert view["current_state"]["n"] == 12
        shot(page, "9-forked-run")

        # A dead letter's Retry forks its run from just before the step's first attempt.
        dead = start(c, "broken", 4, execution_id="br-dead")
        wait_until(lambda: status_is(c, dead, "failed"), "broken run fails")
        page.click("nav a[data-nav=operations]")
        page.locator(f"#dead-letters tr[data-item='{dead}/only/2'] button").click()
        page.wait_for_selector(f"#run-header a:has-text('{dead} at record 1')")
        retried = page.url.split("#/run/")[1].split("?")[0]
        view = wait_until(lambda: status_is(c, retried, "failed"), "the retry runs the step")
        attempts = c.get(f"/views/executions/{retried}/timeline").json()["rows"]
        assert [r["attempt"] for r in attempts] == [1, 2]  # every attempt again
        shot(page, "10-dead-letter-retried")
