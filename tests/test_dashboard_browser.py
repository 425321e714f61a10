"""The dashboard in real headless Chromium against the real running stack.

Needs Debian's chromium (CHROMIUM_PATH or on PATH) and the built frontend
(`make frontend`). Where Chromium is missing the test skips, unless
MDSTACK_REQUIRE_BROWSER=1 (CI sets it), where it fails instead.
Screenshots go to artifacts/. The stack runs public (no API_KEY: the banner
says so) and private (API_KEY + viewer login: the page logs in, reads the API
through the gateway's /api, and never holds the key).
"""

from __future__ import annotations

import os
import shutil
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from harness.servers import wait_ready
from harness.stack import Stack
from services.common.settings import Settings
from services.realtime_gateway.dashboard import REPO_DIST

AXE = REPO_DIST.parent / "node_modules" / "axe-core" / "axe.min.js"  # a devDependency of the dashboard

pytestmark = pytest.mark.browser  # and the real processes it drives
ARTIFACTS = Path(__file__).resolve().parents[1] / "artifacts"
SYMBOLS = ["BTCUSDT", "ETHUSDT", "XAUUSD"]
API_KEY = "browser-test-read-key"
VIEWER = {"username": "viewer", "password": "viewer-password-long"}
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


def chromium() -> str:
    path = os.environ.get("CHROMIUM_PATH") or shutil.which("chromium") or shutil.which("chromium-browser")
    if not path:
        if os.environ.get("MDSTACK_REQUIRE_BROWSER") == "1":
            pytest.fail("Chromium is required here (MDSTACK_REQUIRE_BROWSER=1) but was not found")
        pytest.skip("no Chromium on this machine")
    if not (REPO_DIST / "index.html").exists():
        pytest.fail("the dashboard is not built: run `make frontend`")
    return path


def running_stack(settings: Settings, tmp_path: Path, **env: str) -> Iterator[Stack]:
    s = Stack(settings, tmp_path)
    s.env.update(
        SYMBOLS=",".join(SYMBOLS),
        TPS="60",
        TRADE_TPS="20",
        TRADE_STUCK_RATE="0.2",
        RTTM_STUCK_AFTER_S="2",
        RTTM_ALERT_STUCK_TRADES="0",  # the first stuck trade fires an alert
        **env,
    )
    if "API_KEY" not in env:
        s.env.pop("API_KEY", None)  # public: whatever the shell running the tests holds
    try:
        s.up()
        s.start("feeder", "--duration", "120", "--quiet")
        yield s
    finally:
        s.stop_all()


@pytest.fixture
def stack(settings: Settings, tmp_path: Path) -> Iterator[Stack]:
    yield from running_stack(settings, tmp_path)


@pytest.fixture
def private_stack(settings: Settings, tmp_path: Path) -> Iterator[Stack]:
    login = {"VIEWER_USERNAME": VIEWER["username"], "VIEWER_PASSWORD": VIEWER["password"]}
    yield from running_stack(settings, tmp_path, API_KEY=API_KEY, PUBLIC_READS="false", **login)


def watch_for_errors(page) -> list[str]:  # type: ignore[no-untyped-def]
    """Page errors and Content-Security-Policy refusals (Chromium reports those on the console)."""
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    page.on("console", lambda msg: errors.append(msg.text) if "Content Security Policy" in msg.text else None)
    return errors


def test_dashboard_live_market_pipeline_and_gateway_restart(stack: Stack) -> None:
    from playwright.sync_api import expect, sync_playwright

    ARTIFACTS.mkdir(exist_ok=True)
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=chromium(), args=CHROMIUM_ARGS)
        page = browser.new_page(viewport={"width": 1400, "height": 900})
        errors = watch_for_errors(page)
        try:
            page.goto(stack.gateway_url + "/")
            expect(page.get_by_test_id("sse-state")).to_have_text("live", timeout=15_000)
            expect(page.get_by_test_id("public-banner")).to_have_text("public demo: anyone with this URL can read it")

            # The symbol list fills and prices move.
            for symbol in SYMBOLS:
                expect(page.get_by_test_id(f"symbol-row-{symbol}")).to_be_visible(timeout=15_000)
            price = page.get_by_test_id(f"symbol-price-{SYMBOLS[0]}")
            first = price.inner_text()
            expect(price).not_to_have_text(first, timeout=10_000)

            # The tape runs for the symbol selected at start, before any click.
            expect(page.get_by_test_id("tape").locator("tbody tr").first).to_be_visible(timeout=10_000)
            expect(page.locator("[title='tape stream live']")).to_be_visible(timeout=10_000)

            # The chart draws candles for the selected symbol; symbol and interval switch.
            page.get_by_test_id(f"symbol-row-{SYMBOLS[1]}").click()
            assert drawn_pixels(page) > 500
            for interval in ("5m", "15m", "1m"):
                page.get_by_test_id(f"interval-{interval}").click()
                expect(page.get_by_test_id(f"interval-{interval}")).to_have_attribute("aria-pressed", "true")
            assert drawn_pixels(page) > 500
            expect(page.get_by_test_id("tape")).to_contain_text(SYMBOLS[1], timeout=10_000)
            expect(page.get_by_test_id("history-table").locator("tbody tr").first).to_be_visible(timeout=10_000)
            expect(page.get_by_test_id("ingest-rate")).not_to_have_text("", timeout=10_000)
            page.screenshot(path=str(ARTIFACTS / "dashboard-market.png"))
            assert serious_violations(page) == []

            # The keyboard selects too: from the selected row, an arrow down and Enter.
            page.get_by_test_id(f"symbol-row-{SYMBOLS[1]}").focus()
            page.keyboard.press("ArrowDown")
            page.keyboard.press("Enter")
            expect(page.get_by_test_id(f"symbol-row-{SYMBOLS[2]}")).to_have_attribute("aria-selected", "true")
            expect(page.get_by_test_id("symbol-detail")).to_contain_text(SYMBOLS[2])
            page.screenshot(path=str(ARTIFACTS / "dashboard-keyboard.png"))

            # The pipeline view: TPS and an alert.
            page.get_by_test_id("tab-pipeline").click()
            expect(page.get_by_test_id("pipeline-tps")).to_have_text(nonzero(), timeout=15_000)
            expect(page.get_by_test_id("alert-stuck_trades")).to_be_visible(timeout=20_000)
            expect(page.get_by_test_id("latency-table")).to_contain_text("end", timeout=15_000)
            page.screenshot(path=str(ARTIFACTS / "dashboard-pipeline.png"))
            assert serious_violations(page) == []

            # A gateway restart is survived: reconnecting, then live again with data flowing.
            page.get_by_test_id("tab-market").click()
            stack.stop("gateway")
            expect(page.get_by_test_id("sse-state")).to_have_text("reconnecting", timeout=10_000)
            # While the stream is down the prices are dimmed and say how old they are.
            row = page.get_by_test_id(f"symbol-row-{SYMBOLS[0]}")
            expect(row).to_have_attribute("data-stale", "true", timeout=5_000)
            expect(page.get_by_test_id(f"symbol-asof-{SYMBOLS[0]}")).to_contain_text("as of ")
            stack.start("gateway")
            wait_ready(stack.gateway_url)
            expect(page.get_by_test_id("sse-state")).to_have_text("live", timeout=20_000)
            expect(row).to_have_attribute("data-stale", "false", timeout=10_000)
            before = price.inner_text()
            expect(price).not_to_have_text(before, timeout=10_000)
            assert errors == []
        finally:
            page.screenshot(path=str(ARTIFACTS / "dashboard-last.png"))
            browser.close()


def test_private_dashboard_logs_in_reads_through_the_gateway_and_never_holds_the_key(private_stack: Stack) -> None:
    from playwright.sync_api import expect, sync_playwright

    ARTIFACTS.mkdir(exist_ok=True)
    url = private_stack.gateway_url
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=chromium(), args=CHROMIUM_ARGS)
        try:
            anonymous = browser.new_context().request  # (a page without a login cannot even load: the browser
            for path in ("/", "/config.json", "/api/symbols", "/stream"):  # would prompt for it)
                assert anonymous.get(url + path).status == 401, path

            context = browser.new_context(http_credentials=VIEWER, viewport={"width": 1400, "height": 900})
            page = context.new_page()
            errors = watch_for_errors(page)
            requests: list[tuple[str, dict[str, str]]] = []
            page.on("request", lambda request: requests.append((request.url, request.headers)))
            page.goto(url + "/")
            expect(page.get_by_test_id("sse-state")).to_have_text("live", timeout=15_000)
            for symbol in SYMBOLS:  # /api/symbols, through the gateway
                expect(page.get_by_test_id(f"symbol-row-{symbol}")).to_be_visible(timeout=15_000)
            price = page.get_by_test_id(f"symbol-price-{SYMBOLS[0]}")  # the stream, behind the same login
            first = price.inner_text()
            expect(price).not_to_have_text(first, timeout=10_000)
            expect(page.get_by_test_id("history-table").locator("tbody tr").first).to_be_visible(timeout=10_000)
            expect(page.get_by_test_id("public-banner")).to_have_count(0)
            page.screenshot(path=str(ARTIFACTS / "dashboard-private.png"))

            config = context.request.get(url + "/config.json")
            assert config.json() == {"apiBaseUrl": "/api", "streamUrl": "/stream", "public": False}
            assert API_KEY not in config.text()
            assert requests, "the page made no requests"
            assert all(u.startswith(url + "/") for u, _ in requests), [u for u, _ in requests]  # same origin only
            assert not [u for u, headers in requests if "x-api-key" in headers or API_KEY in u]
            assert errors == []
        finally:
            browser.close()


def nonzero():  # type: ignore[no-untyped-def]
    import re

    return re.compile(r"^\s*(?!0(\.0+)?\s*$)\d")


def drawn_pixels(page) -> int:  # type: ignore[no-untyped-def]
    """Pixels differing from the background across the chart's canvases (candles, volume, axes)."""
    deadline = time.monotonic() + 10
    best = 0
    while time.monotonic() < deadline:
        best = page.evaluate(
            """() => {
              let count = 0;
              for (const canvas of document.querySelectorAll('[data-testid="chart"] canvas')) {
                if (!canvas.width || !canvas.height) continue;
                const data = canvas.getContext('2d').getImageData(0, 0, canvas.width, canvas.height).data;
                const [r0, g0, b0, a0] = [data[0], data[1], data[2], data[3]];
                for (let i = 0; i < data.length; i += 16) {
                  if (data[i] !== r0 || data[i + 1] !== g0 || data[i + 2] !== b0 || data[i + 3] !== a0) count++;
                }
              }
              return count;
            }"""
        )
        if best > 500:
            return int(best)
        time.sleep(0.25)
    return int(best)


def serious_violations(page) -> list[str]:  # type: ignore[no-untyped-def]
    """axe-core's serious and critical violations on the page as it is now ("rule: target" each).

    axe is evaluated through the debugging protocol, so the page's Content-Security-Policy stays as it is."""
    assert AXE.exists(), f"{AXE} is missing: run `npm ci` in frontend/"
    page.evaluate("() => { " + AXE.read_text() + " }")  # its UMD wrapper sets window.axe
    violations = page.evaluate(
        """async () => (await axe.run(document, { resultTypes: ["violations"] })).violations
             .filter((v) => v.impact === "serious" || v.impact === "critical")
             .flatMap((v) => v.nodes.map((n) => `${v.id}: ${n.target.join(" ")}`))"""
    )
    return [str(v) for v in violations]
