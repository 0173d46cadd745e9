"""The Airflow UI in a real browser: headless Debian chromium driven by Playwright.

Logs in with the simple auth manager's form, opens jit_audit_adhoc's trigger form, fills it in (query
by account, the account id, event types, the UTC range), triggers it and watches the run succeed on
its page; then shows the form refusing an 11-digit account id without starting a run. Screenshots
go to test-artifacts/browser/.
"""

from __future__ import annotations

import os
import re
import shutil
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from livelib import (
    ARTIFACTS,
    adhoc_results,
    api_path,
    busiest_account,
    expected_account_events,
    iso_millis,
    task_states,
    wait_for_run,
)
from playwright.sync_api import expect, sync_playwright

pytestmark = pytest.mark.live

CHROMIUM = os.environ.get("JIT_AUDIT_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-background-networking",
                 "--disable-dev-shm-usage"]
SHOTS = ARTIFACTS / "browser"
ADHOC_DAG = "jit_audit_adhoc"


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    if not shutil.which(CHROMIUM) and not os.path.exists(CHROMIUM):
        pytest.fail(f"no chromium at {CHROMIUM}: `make test` installs Debian's (apt-get install chromium)")
    SHOTS.mkdir(parents=True, exist_ok=True)
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
        try:
            yield browser
        finally:
            browser.close()


@pytest.fixture()
def page(browser, live_stack, request) -> Iterator[Any]:
    """A fresh browser session, logged in through the UI's sign-in form."""
    context = browser.new_context(viewport={"width": 1400, "height": 1100})
    context.set_default_timeout(30_000)
    page = context.new_page()
    try:
        page.goto(f"{live_stack.api_url}/dags/{ADHOC_DAG}")
        page.wait_for_url(re.compile(r"/auth/login"))  # not signed in yet: the UI sends us to sign in
        page.get_by_label("Username").fill(live_stack.username)
        page.get_by_label("Password").fill(live_stack.password)
        page.get_by_role("button", name="Sign in").click()
        page.wait_for_url(re.compile(rf"/dags/{ADHOC_DAG}"))
        yield page
    finally:
        # What the page showed last, pass or fail: the first thing to look at when a step timed out.
        try:
            page.screenshot(path=str(SHOTS / f"{request.node.name}-last.png"), full_page=True)
        finally:
            context.close()


def open_trigger_form(page) -> Any:
    page.get_by_role("button", name="Trigger Dag").click()
    dialog = page.get_by_role("dialog").first
    dialog.get_by_text(f"Trigger Dag - {ADHOC_DAG}").wait_for()
    return dialog


def field(dialog, page, label: str) -> Any:
    """The form row (a role=group) whose label starts with ``label``."""
    return dialog.get_by_role("group").filter(has=page.locator("label", has_text=re.compile(rf"^{re.escape(label)}")))


def fill_what(dialog, page, *, account_id: str, event_types: list[str]) -> None:
    dialog.get_by_role("button", name="What to look for").click()
    field(dialog, page, "Query by").get_by_role("combobox").click()
    page.get_by_role("option", name="An AWS account, over a time range").click()
    dialog.locator("#element_account_id").fill(account_id)
    for event_type in event_types:
        field(dialog, page, "Event types").get_by_role("combobox").click()
        page.get_by_role("option", name=event_type, exact=True).click()


def fill_when(dialog, page, start: datetime, end: datetime) -> None:
    dialog.get_by_role("button", name="When (UTC)").click()
    for label, moment in (("From (inclusive)", start), ("Until (exclusive)", end)):
        field(dialog, page, label).get_by_test_id("datetime-input").click()
        picker = page.get_by_role("dialog").last
        picker.get_by_placeholder("YYYY/MM/DD").fill(moment.strftime("%Y/%m/%d"))
        picker.get_by_placeholder("HH:mm").fill(moment.strftime("%H:%M"))
        dialog.get_by_text(f"Trigger Dag - {ADHOC_DAG}").click()  # close the picker, keep the form


def adhoc_run_ids(live_stack) -> set[str]:
    body = live_stack.api("GET", api_path("dags", ADHOC_DAG, "dagRuns") + "?limit=100")
    return {run["dag_run_id"] for run in body["dag_runs"]}


def test_trigger_form_runs_the_adhoc_query_and_the_run_succeeds(page, live_stack, live_aws, seeded_items):
    live_stack.api("PATCH", api_path("dags", ADHOC_DAG), {"is_paused": False})
    now = datetime.now(UTC).replace(minute=0, second=0, microsecond=0)
    start, end = now - timedelta(days=6), now + timedelta(hours=1)
    account = busiest_account(seeded_items)
    event_types = ["GRANTED", "REVOKED"]
    expected = expected_account_events(seeded_items, account, iso_millis(start), iso_millis(end), event_types)
    assert expected

    dialog = open_trigger_form(page)
    fill_what(dialog, page, account_id=account, event_types=event_types)
    fill_when(dialog, page, start, end)
    page.screenshot(path=str(SHOTS / "adhoc-trigger-form-filled.png"), full_page=True)
    with page.expect_response(lambda response: response.request.method == "POST"
                              and response.url.endswith(f"/dags/{ADHOC_DAG}/dagRuns")) as posted:
        dialog.get_by_test_id("trigger-dag-submit").click()
    response = posted.value
    assert response.ok, response.text()
    run = response.json()
    assert run["conf"]["query_by"] == "account" and run["conf"]["account_id"] == account
    assert run["conf"]["event_types"] == event_types
    assert run["conf"]["start"] == iso_millis(start) and run["conf"]["end"] == iso_millis(end)

    # The UI goes to the run's page and shows its state as it changes.
    run_id = run["dag_run_id"]
    page.wait_for_url(re.compile(r"/runs/"))
    page.get_by_text(run_id, exact=True).first.wait_for()
    page.get_by_text("Success", exact=True).first.wait_for(timeout=120_000)  # the run's state badge
    assert wait_for_run(live_stack, ADHOC_DAG, run_id, timeout=30) == "success", \
        task_states(live_stack, ADHOC_DAG, run_id)
    page.reload()  # the task list too: the run's badge and both task instances in Success
    expect(page.get_by_text("Success", exact=True)).to_have_count(3, timeout=30_000)
    page.screenshot(path=str(SHOTS / "adhoc-run-success.png"), full_page=True)

    manifest, found = adhoc_results(live_aws, run_id)
    assert found == expected
    assert manifest["counts"]["items"] == len(expected)


def test_trigger_form_refuses_an_11_digit_account_id(page, live_stack):
    live_stack.api("PATCH", api_path("dags", ADHOC_DAG), {"is_paused": False})
    runs_before = adhoc_run_ids(live_stack)
    dialog = open_trigger_form(page)
    fill_what(dialog, page, account_id="12345678901", event_types=[])
    with page.expect_response(lambda response: response.request.method == "POST"
                              and response.url.endswith(f"/dags/{ADHOC_DAG}/dagRuns")) as posted:
        dialog.get_by_test_id("trigger-dag-submit").click()
    assert posted.value.status == 400
    error = dialog.get_by_text(re.compile(r"Invalid input for param account_id: '12345678901' does not match"))
    error.wait_for()
    page.screenshot(path=str(SHOTS / "adhoc-form-refuses-bad-account.png"), full_page=True)
    assert dialog.is_visible()  # the form stays open with the message; no run page
    assert "/runs/" not in page.url
    assert adhoc_run_ids(live_stack) == runs_before
