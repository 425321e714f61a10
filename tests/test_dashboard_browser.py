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
import re
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
SYMBOLS = ["BTCUSDT", "ETHUSDT", "XAUUSD", "EURUSD"]
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

            # The chart draws candle bodies for the selected symbol; symbol and interval switch.
            page.get_by_test_id(f"symbol-row-{SYMBOLS[1]}").click()
            assert candle_body_pixels(page) >= MIN_BODY_PIXELS
            for interval in ("5m", "15m", "1m"):
                page.get_by_test_id(f"interval-{interval}").click()
                expect(page.get_by_test_id(f"interval-{interval}")).to_have_attribute("aria-pressed", "true")
            assert candle_body_pixels(page) >= MIN_BODY_PIXELS
            # The legend: the bar under the crosshair (else the newest) in the symbol's format, cents for ETH.
            page.get_by_test_id("chart").hover()
            legend = page.get_by_test_id("chart-legend")
            expect(legend).to_contain_text(f"{SYMBOLS[1]} · 1m")
            expect(legend).to_have_text(re.compile(r"O\s*\d+\.\d{2}(?!\d).*C\s*\d+\.\d{2}(?!\d).*Vol\s*[\d.]+"))
            # The canvas says nothing to a screen reader: its summary does.
            summary = re.compile(r"^\d+ 1m bars? from .* last close \d+\.\d{2}\b")
            expect(page.get_by_test_id("chart-summary")).to_have_text(summary)
            expect(page.get_by_test_id("tape")).to_contain_text(SYMBOLS[1], timeout=10_000)
            expect(page.get_by_test_id("history-table").locator("tbody tr").first).to_be_visible(timeout=10_000)
            expect(page.get_by_test_id("ingest-rate")).not_to_have_text("", timeout=10_000)
            page.screenshot(path=str(ARTIFACTS / "dashboard-market.png"))
            assert serious_violations(page) == []

            # The keyboard selects too: from the selected row, an arrow down and Enter selects the row below.
            rows = page.locator("[data-testid^='symbol-row-']").evaluate_all("rows => rows.map(r => r.dataset.testid)")
            below = rows[rows.index(f"symbol-row-{SYMBOLS[1]}") + 1]
            page.get_by_test_id(f"symbol-row-{SYMBOLS[1]}").focus()
            page.keyboard.press("ArrowDown")
            page.keyboard.press("Enter")
            expect(page.get_by_test_id(below)).to_have_attribute("aria-selected", "true")
            expect(page.get_by_test_id("symbol-detail")).to_contain_text(below.removeprefix("symbol-row-"))
            page.screenshot(path=str(ARTIFACTS / "dashboard-keyboard.png"))

            # EURUSD's tick size (0.00001) gives its prices five decimals; the chart stays the widest element
            # on a smaller screen too.
            page.get_by_test_id("symbol-row-EURUSD").click()
            expect(legend).to_contain_text("EURUSD · 1m")
            expect(legend).to_have_text(re.compile(r"C\s*1\.\d{5}(?!\d)"))
            # The list and the figures use the same tick size as the chart.
            expect(page.get_by_test_id("symbol-price-EURUSD")).to_have_text(re.compile(r"1\.\d{5}(?!\d)"))
            assert candle_body_pixels(page) >= MIN_BODY_PIXELS
            page.set_viewport_size({"width": 1024, "height": 768})
            chart_width = page.get_by_test_id("chart").bounding_box()["width"]
            assert chart_width > 0.9 * 1024 - 60, chart_width  # the full width but the page's padding
            page.screenshot(path=str(ARTIFACTS / "dashboard-market-1024x768.png"))
            page.set_viewport_size({"width": 1400, "height": 900})
            assert page.get_by_test_id("chart").bounding_box()["width"] > 1400 * 0.6  # the widest column
            page.screenshot(path=str(ARTIFACTS / "dashboard-market-1400x900.png"))

            # The pipeline view: TPS and an alert.
            page.get_by_test_id("tab-pipeline").click()
            expect(page.get_by_test_id("pipeline-tps")).to_have_text(nonzero(), timeout=15_000)
            expect(page.get_by_test_id("alert-stuck_trades")).to_be_visible(timeout=20_000)
            expect(page.get_by_test_id("latency-table")).to_contain_text("end", timeout=15_000)
            page.screenshot(path=str(ARTIFACTS / "dashboard-pipeline.png"))
            assert serious_violations(page) == []

            # A gateway restart is survived: reconnecting, then live again with data flowing, and the chart
            # refetches the recent candles (bars may have closed unseen); so it does when the tab is shown again.
            page.get_by_test_id("tab-market").click()
            expect(page.get_by_test_id("chart-legend")).to_be_visible(timeout=10_000)
            refetches = recent_candle_requests(page)
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
            assert refetches, "no candles refetched after the stream reconnected"
            refetches.clear()
            page.evaluate("() => document.dispatchEvent(new Event('visibilitychange'))")  # visible, as it is
            deadline = time.monotonic() + 10
            while not refetches and time.monotonic() < deadline:
                page.wait_for_timeout(100)
            assert refetches, "no candles refetched when the tab became visible"
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


def recent_candle_requests(page) -> list[str]:  # type: ignore[no-untyped-def]
    """From now on, the chart's refetches of its recent candles (fewer than a full load's 500)."""
    seen: list[str] = []

    def on_request(request) -> None:  # type: ignore[no-untyped-def]
        match = re.search(r"/candles\?interval=\w+&limit=(\d+)$", request.url)
        if match and int(match.group(1)) < 500:
            seen.append(request.url)

    page.on("request", on_request)
    return seen


# Pixels of the candles' own colours (candleChart.ts UP and DOWN) in solid 3x3 blocks inside the price pane:
# bodies, not the 1 px wicks or the dotted last-price line, and never grid, axis or volume pixels.
CANDLE_COLOURS = [(38, 166, 154), (239, 83, 80)]
MIN_BODY_PIXELS = 20


def candle_body_pixels(page) -> int:  # type: ignore[no-untyped-def]
    """Centres of 3x3 blocks of a candle colour on the price pane's plot (the first pane's widest canvases)."""
    deadline = time.monotonic() + 10
    best = 0
    while time.monotonic() < deadline:
        best = page.evaluate(
            """(colours) => {
              const pane = document.querySelector('[data-testid="chart"] table tr');
              if (!pane) return 0;
              const canvases = [...pane.querySelectorAll('canvas')];
              const widest = Math.max(0, ...canvases.map((c) => c.width));
              let blocks = 0;
              for (const canvas of canvases) {
                if (canvas.width !== widest || !canvas.height) continue;
                const { width: w, height: h } = canvas;
                const data = canvas.getContext('2d').getImageData(0, 0, w, h).data;
                const hit = new Uint8Array(w * h);
                for (let p = 0; p < w * h; p++) {
                  const [r, g, b, a] = [data[4 * p], data[4 * p + 1], data[4 * p + 2], data[4 * p + 3]];
                  hit[p] = a > 250 && colours.some(([cr, cg, cb]) =>
                    Math.abs(r - cr) <= 3 && Math.abs(g - cg) <= 3 && Math.abs(b - cb) <= 3) ? 1 : 0;
                }
                for (let y = 1; y < h - 1; y++) {
                  for (let x = 1; x < w - 1; x++) {
                    let all = 1;
                    for (let dy = -1; dy <= 1 && all; dy++)
                      for (let dx = -1; dx <= 1 && all; dx++) all = hit[(y + dy) * w + x + dx];
                    blocks += all;
                  }
                }
              }
              return blocks;
            }""",
            CANDLE_COLOURS,
        )
        if best >= MIN_BODY_PIXELS:
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
