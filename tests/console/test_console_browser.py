"""The web console in a real headless browser (Debian chromium via playwright) against a
real ``driftwarden serve`` with tokens configured and three hours of demo traffic posted
over HTTP. Every test saves a screenshot under tests/artifacts/ (ignored by git).
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from playwright.sync_api import Browser, BrowserContext, Page, sync_playwright

from tests.support.console import (
    ARTIFACTS,
    CHROMIUM,
    CONFIG,
    NEW_VERSION,
    demo_history,
    post_history,
    wait_for,
)
from tests.support.daemon import Daemon

pytestmark = pytest.mark.slow
READ, CONTROL, INGEST = "read-token-console", "control-token-console", "ingest-token-console"
WORKFLOWS = ("crm-updates", "invoice-triage", "support-replies")


def api(daemon: Daemon, path: str, **params: Any) -> Any:
    resp = httpx.get(
        daemon.url + path, params=params, headers={"Authorization": f"Bearer {READ}"}, timeout=10
    )
    resp.raise_for_status()
    return resp.json()


def drift_finding(daemon: Daemon) -> dict[str, Any] | None:
    found = api(daemon, "/v1/findings", workflow="invoice-triage", signal="edited")["findings"]
    return next((f for f in found if f["detector"] == "cusum" and f["status"] == "critical"), None)


@pytest.fixture(scope="module")
def daemon(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Daemon]:
    tmp = tmp_path_factory.mktemp("console")
    (tmp / "driftwarden.toml").write_text(CONFIG)
    env = {
        "DRIFTWARDEN_CONFIG": str(tmp / "driftwarden.toml"),
        "DRIFTWARDEN_READ_TOKENS": READ,
        "DRIFTWARDEN_CONTROL_TOKENS": CONTROL,
        "DRIFTWARDEN_INGEST_TOKENS": INGEST,
    }
    with Daemon(
        f"sqlite:///{tmp / 'dw.db'}",
        env=env,
        args=["--detect-interval", "1"],
        log_path=tmp / "daemon.log",
    ) as d:
        post_history(d.url, INGEST, demo_history(time.time()))
        wait_for(lambda: drift_finding(d), timeout=120)
        yield d


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    assert CHROMIUM.exists(), "apt-get install chromium (.ci/run installs it)"
    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=str(CHROMIUM), args=["--no-sandbox"])
        yield b
        b.close()


@pytest.fixture
def context(browser: Browser) -> Iterator[BrowserContext]:
    ctx = browser.new_context(viewport={"width": 1400, "height": 1000}, timezone_id="Asia/Tokyo")
    yield ctx
    ctx.close()


def shot(page: Page, name: str) -> Path:
    ARTIFACTS.mkdir(exist_ok=True)
    path = ARTIFACTS / f"console-{name}.png"
    page.screenshot(path=str(path), full_page=True)
    return path


def sign_in(page: Page, daemon: Daemon, token: str, next_path: str = "/") -> None:
    page.goto(f"{daemon.url}/sign-in?next={next_path}")
    page.fill("input[name=token]", token)
    page.click("form[action='/sign-in'] button[type=submit]")
    page.wait_for_load_state()


def test_overview_shows_every_workflow_with_its_mode_after_a_read_sign_in(
    daemon: Daemon, context: BrowserContext
) -> None:
    page = context.new_page()
    first = page.goto(daemon.url + "/")
    assert first is not None and first.status == 401  # tokens configured: sign in to read
    assert page.locator("input[name=token]").count() == 1
    shot(page, "sign-in")
    sign_in(page, daemon, READ)
    modes = {s["workflow"]: s["mode"] for s in api(daemon, "/v1/switches")["switches"]}
    rows = page.locator("tr.workflow")
    assert sorted(rows.evaluate_all("rs => rs.map(r => r.dataset.workflow)")) == list(WORKFLOWS)
    for name in WORKFLOWS:
        row = page.locator(f"tr.workflow[data-workflow='{name}']")
        assert row.locator(".mode").inner_text() == modes[name]
        assert row.locator("svg.chart").count() == 5  # the headline signals
    drifting = page.locator("tr.workflow[data-workflow='invoice-triage']")
    assert drifting.locator(".badge").first.inner_text().lower() == "critical"
    # the findings that matter come first, with their summary
    first_finding = page.locator("section.matter li").first
    assert "invoice-triage" in first_finding.inner_text()
    assert "vs baseline 0.20 (declared)" in first_finding.inner_text()
    shot(page, "overview")


def test_overview_works_without_javascript(daemon: Daemon, browser: Browser) -> None:
    ctx = browser.new_context(java_script_enabled=False)
    try:
        page = ctx.new_page()
        sign_in(page, daemon, READ)
        assert page.locator("tr.workflow").count() == len(WORKFLOWS)
        # without the script the times stay in UTC, as the HTML has them
        assert page.locator("footer time").first.inner_text().endswith("UTC")
        shot(page, "overview-no-js")
    finally:
        ctx.close()


def test_workflow_page_charts_the_baseline_and_the_change_point(
    daemon: Daemon, context: BrowserContext
) -> None:
    page = context.new_page()
    sign_in(page, daemon, READ, "/workflows/invoice-triage?range=24h")
    finding = drift_finding(daemon)
    assert finding is not None
    chart = page.locator("#chart-edit-rate svg.chart")
    assert chart.locator("polyline.series").count() >= 1
    baseline = chart.locator("line.baseline")
    assert float(baseline.get_attribute("data-value") or "nan") == pytest.approx(
        finding["baseline"]
    )
    since = chart.locator("line.marker-since")
    assert since.count() == 1
    assert float(since.get_attribute("data-t") or "nan") == pytest.approx(finding["since"])
    # the change point sits right of the baseline's start and inside the plot
    box, plot = since.bounding_box(), chart.locator("rect.plot").bounding_box()
    assert box is not None and plot is not None
    assert plot["x"] < box["x"] <= plot["x"] + plot["width"]
    card = page.locator("#chart-edit-rate")
    assert finding["summary"] in card.inner_text()
    assert "threshold" in card.locator(".detector").first.inner_text()
    # the model version change is marked (first seen half-way through the history)
    assert chart.locator("line.marker-version").count() == 1
    assert NEW_VERSION in page.locator("section.versions").inner_text()
    # the budget in force is the default one, as /v1/workflows reports it
    budget = next(
        w["budget"]
        for w in api(daemon, "/v1/workflows")["workflows"]
        if w["workflow"] == "invoice-triage"
    )
    assert f"{budget['false_alarms_per_month']:.3g} false critical" in page.inner_text(
        "section.budget"
    )
    # times: local zone in the text (the context runs in Tokyo), UTC on hover
    stamp = card.locator(".detector time").first
    assert stamp.get_attribute("title", timeout=1000).endswith("UTC")  # type: ignore[union-attr]
    assert not stamp.inner_text().endswith("UTC")
    for name in ("1h", "7d"):
        page.click(f"nav.ranges a:text-is('{name}')")
        assert page.locator("nav.ranges a.current").inner_text() == name
        assert page.locator("#chart-edit-rate svg.chart").count() == 1
    page.click("nav.ranges a:text-is('24h')")
    shot(page, "workflow")


def test_a_control_sign_in_moves_a_workflow_to_review_and_the_api_agrees(
    daemon: Daemon, context: BrowserContext
) -> None:
    page = context.new_page()
    sign_in(page, daemon, CONTROL, "/workflows/support-replies")
    reason = f"console test {time.time():.0f}: reviewers report odd replies"
    form = page.locator("form#set-mode")
    form.locator("select[name=mode]").select_option("review")
    form.locator("input[name=reason]").fill(reason)
    form.locator("button[type=submit]").click()
    page.wait_for_load_state()
    assert page.locator("#mode").inner_text() == "review"
    assert "Switch changed" in page.inner_text("main")
    switch = api(daemon, "/v1/switches/support-replies")
    actor = "token:" + hashlib.sha256(CONTROL.encode()).hexdigest()[:8]
    assert (switch["mode"], switch["source"], switch["reason"]) == ("review", "human", reason)
    assert switch["updated_by"] == actor
    listed = {s["workflow"]: s for s in api(daemon, "/v1/switches")["switches"]}
    assert listed["support-replies"]["mode"] == "review"
    newest = api(daemon, "/v1/audit", workflow="support-replies")["audit"][0]
    assert (newest["reason"], newest["actor"], newest["source"]) == (reason, actor, "human")
    assert (newest["before"]["mode"], newest["after"]["mode"]) == ("auto", "review")
    assert newest["after"]["version"] == switch["version"]
    row = page.locator("tr.audit-row").first
    assert reason in row.inner_text() and actor in row.inner_text()
    # the switch change is marked on the charts too
    assert page.locator("#chart-edit-rate line.marker-switch").count() == 1
    shot(page, "switched-to-review")
    # and back to auto, the same way
    form = page.locator("form#set-mode")
    form.locator("select[name=mode]").select_option("auto")
    form.locator("input[name=reason]").fill("false alarm, back to auto")
    form.locator("button[type=submit]").click()
    page.wait_for_load_state()
    assert api(daemon, "/v1/switches/support-replies")["mode"] == "auto"


def _form_csrf(page: Page) -> str:
    value = page.locator("input[name=csrf]").first.get_attribute("value")
    assert value
    return value


def test_the_switch_form_is_refused_without_control_token_or_csrf(
    daemon: Daemon, browser: Browser
) -> None:
    target = f"{daemon.url}/workflows/crm-updates/switch"

    def switch_now() -> dict[str, Any]:  # the state, not when it was read
        found = api(daemon, "/v1/switches/crm-updates")
        return {k: v for k, v in found.items() if k not in ("as_of", "stale")}

    before = switch_now()
    audit_before = api(daemon, "/v1/audit", workflow="crm-updates")["audit"]
    change = {"change": "mode", "mode": "manual", "reason": "should not happen"}
    names = {None: "anonymous", READ: "read", CONTROL: "control"}

    def attempt(token: str | None, with_csrf: bool) -> tuple[int, str]:
        ctx = browser.new_context()
        try:
            page = ctx.new_page()
            if token:
                sign_in(page, daemon, token)
            else:
                page.goto(daemon.url + "/sign-in")  # an anonymous session and its CSRF
            form: dict[str, str | float | bool] = {
                **change,
                **({"csrf": _form_csrf(page)} if with_csrf else {}),
            }
            resp = page.request.post(target, form=form, max_redirects=0)
            page.set_content(resp.text())  # the refusal page, as a person would see it
            shot(page, f"refused-{names[token]}{'' if with_csrf else '-no-csrf'}")
            return resp.status, resp.text()
        finally:
            ctx.close()

    status, body = attempt(None, True)
    assert status == 403 and "needs a control token" in body
    status, body = attempt(READ, True)
    assert status == 403 and "read token" in body
    status, body = attempt(CONTROL, False)
    assert status == 403 and "CSRF" in body
    # a read-token page shows no switch form at all
    ctx = browser.new_context()
    try:
        page = ctx.new_page()
        sign_in(page, daemon, READ, "/workflows/crm-updates")
        assert page.locator("form#set-mode").count() == 0
        assert "Read-only" in page.inner_text("section.switch")
    finally:
        ctx.close()
    # nothing changed, nothing audited
    assert switch_now() == before
    assert api(daemon, "/v1/audit", workflow="crm-updates")["audit"] == audit_before


def test_the_api_docs_render_offline(daemon: Daemon, context: BrowserContext) -> None:
    elsewhere: list[str] = []

    def only_here(route: Any) -> None:
        url = route.request.url
        if url.startswith(daemon.url):
            route.continue_()
        else:  # a CDN would be here: there is no network to reach it
            elsewhere.append(url)
            route.abort()

    context.route("**/*", only_here)
    page = context.new_page()
    page.goto(daemon.url + "/docs")
    page.wait_for_selector(".opblock", timeout=15_000)
    paths = page.locator(".opblock-summary-path").all_inner_texts()
    assert any("/v1/events" in p for p in paths) and any("/v1/switches" in p for p in paths)
    assert elsewhere == []
    shot(page, "docs")
