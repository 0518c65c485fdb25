"""The dashboard: its routes (in process), then the page itself in a real headless Chromium.

The browser test serves the gateway app with uvicorn (uvloop, httptools) on 127.0.0.1 in a thread, over an
in-process engine (``EngineVenue``) where "outsiders" (accounts the gateway does not act for) rest and trade as
other processes would. Debian's ``chromium`` is driven by Playwright's Python package (never a browser that
Playwright downloads): the page loads with no console error, the ladder shows the live book, an order placed
from the ticket shows in the book, then in the fills once another account crosses it, and a cancel button
takes an order out. It skips, saying why, where ``/usr/bin/chromium`` or Playwright is missing
(``scripts/ensure_chromium.sh`` installs the browser where it can).

A screenshot of the page is written to ``build/artifacts/dashboard.png`` on every run; with
``PROPTRADE_UPDATE_SCREENSHOT=1`` also to ``docs/img/dashboard.png``, the one docs/GATEWAY.md shows.
"""

from __future__ import annotations

import asyncio
import os
import re
import shutil
import time
import warnings
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

with warnings.catch_warnings():  # starlette's TestClient prefers httpx2, which is not a dependency
    warnings.simplefilter("ignore")
    from fastapi.testclient import TestClient

from c_engine import Command, Engine, Side, SymbolConfig
from gateway.app import create_app
from gateway.config import GatewayConfig
from gateway.dashboard import STATIC_DIR
from gateway.testing import AppInThread
from gateway.venue import EngineVenue, Venue
from hotpath.accounts import Account

ROOT = Path(__file__).resolve().parents[2]
CHROMIUM = Path("/usr/bin/chromium")
#: the flags Chromium runs with here: headless, no sandbox (root in a container), nothing fetched from outside
CHROMIUM_FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                  "--disable-background-networking", "--disable-component-update", "--disable-sync"]  # fmt: skip
#: how long a browser check waits for the page to show something (a loaded 2-core machine is slow)
WAIT_MS = 15_000
ALICE, BOB = "alice-key", "bob-key"
#: accounts on the platform that the gateway does not act for
OUTSIDER, OTHER_OUTSIDER = 50, 51
SYMBOLS = [SymbolConfig(name="SIM", tick_size=0.01, band_ticks=1000, reference_price=10000)]


def config(auth: bool = True) -> GatewayConfig:
    accounts = (Account("alice", 1, api_key=ALICE), Account("bob", 2, api_key=BOB))
    return GatewayConfig(prefix="dash", accounts=accounts, auth=auth, heartbeat_s=1.0)


async def engine_venue(cfg: GatewayConfig) -> Venue:
    return EngineVenue(Engine(), SYMBOLS, {"alice": 1, "bob": 2})


@pytest.fixture
def client() -> Iterator[TestClient]:
    with TestClient(create_app(config(), venue=engine_venue)) as c:
        yield c


# --- routes ---------------------------------------------------------------------------------------------------


def test_the_page_is_served_at_the_root_without_a_key_and_allows_only_this_origin(client: TestClient) -> None:
    r = client.get("/")
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/html")
    assert "default-src 'self'" in r.headers["content-security-policy"]
    for asset in re.findall(r'(?:src|href)="([^"]+)"', r.text):
        assert asset.startswith("/"), f"{asset} is not served by the gateway"
        assert client.get(asset).status_code == 200, asset


def test_the_static_files_are_public_and_a_missing_one_is_a_json_404(client: TestClient) -> None:
    js = client.get("/static/dashboard.js")
    assert js.status_code == 200 and "javascript" in js.headers["content-type"]
    assert client.get("/static/dashboard.css").headers["content-type"].startswith("text/css")
    missing = client.get("/static/nope.js")
    assert missing.status_code == 404 and missing.json()["code"] == "NOT_FOUND"


def test_the_pages_files_fetch_nothing_from_elsewhere() -> None:
    for path in STATIC_DIR.iterdir():
        text = re.sub(r'xmlns="[^"]*"', "", path.read_text())  # a namespace name, never fetched
        assert not re.search(r"https?://", text), f"{path.name} names another origin"
        assert "@import" not in text and "url(" not in text, path.name


def test_whoami_names_the_keys_account_and_needs_a_key(client: TestClient) -> None:
    assert client.get("/whoami", headers={"X-API-Key": BOB}).json() == {
        "client_id": "bob",
        "accounts": ["bob"],
        "auth": True,
    }
    r = client.get("/whoami")
    assert r.status_code == 401 and r.json()["code"] == "UNAUTHORIZED"


def test_whoami_with_auth_off_lists_every_account() -> None:
    with TestClient(create_app(config(auth=False), venue=engine_venue)) as c:
        assert c.get("/whoami").json() == {"client_id": None, "accounts": ["alice", "bob"], "auth": False}


def test_the_page_and_its_files_stay_out_of_the_api_schema(client: TestClient) -> None:
    paths = client.get("/openapi.json").json()["paths"]
    assert "/" not in paths and not any(p.startswith("/static") for p in paths) and "/whoami" in paths


# --- the page in a browser --------------------------------------------------------------------------------------


class LiveGateway:
    """The gateway app under uvicorn in a thread, on 127.0.0.1, over an in-process engine."""

    def __init__(self) -> None:
        self.venue: EngineVenue | None = None
        self.loop: asyncio.AbstractEventLoop | None = None
        self.served = AppInThread(create_app(config(), venue=self._venue))
        self.url = self.served.url

    async def _venue(self, cfg: GatewayConfig) -> Venue:
        self.loop = asyncio.get_running_loop()
        self.venue = EngineVenue(Engine(), SYMBOLS, {"alice": 1, "bob": 2})
        return self.venue

    def outsider(self, side: str, size: int, price_ticks: int, client: int = OUTSIDER) -> None:
        """An order of someone the gateway does not act for, run on the server's loop."""
        venue, loop = self.venue, self.loop
        assert venue is not None and loop is not None
        cmd = Command.new(client, 0, Side.BUY if side == "buy" else Side.SELL, size, price_ticks,
                          ts_ns=time.monotonic_ns())  # fmt: skip

        async def run() -> None:
            venue.external(cmd)

        asyncio.run_coroutine_threadsafe(run(), loop).result(10)

    def stop(self) -> None:
        self.served.stop()


@pytest.fixture
def live() -> Iterator[LiveGateway]:
    gateway = LiveGateway()
    try:
        yield gateway
    finally:
        gateway.stop()


def seed_book(live: LiveGateway) -> None:
    """Four levels a side from one outsider, and a trade between two."""
    for size, ticks in ((3, 10010), (5, 10012), (2, 10015), (4, 10020)):
        live.outsider("sell", size, ticks)
    for size, ticks in ((4, 9995), (6, 9990), (3, 9985), (8, 9980)):
        live.outsider("buy", size, ticks)
    live.outsider("sell", 1, 9995, client=OTHER_OUTSIDER)  # takes 1 of the best bid: a trade on the tape


def test_the_dashboard_shows_the_live_book_and_trades_from_its_ticket(live: LiveGateway, tmp_path: Path) -> None:
    sync_api = pytest.importorskip("playwright.sync_api", reason="Playwright's Python package is not installed")
    if not CHROMIUM.exists():
        pytest.skip("no /usr/bin/chromium (Debian's chromium package): scripts/ensure_chromium.sh installs it")
    expect = sync_api.expect
    expect.set_options(timeout=WAIT_MS)
    seed_book(live)
    errors: list[str] = []
    with sync_api.sync_playwright() as playwright:
        context = playwright.chromium.launch_persistent_context(
            str(tmp_path / "profile"), executable_path=str(CHROMIUM), headless=True, args=CHROMIUM_FLAGS,
            viewport={"width": 1440, "height": 900},
        )  # fmt: skip
        try:
            page = context.pages[0] if context.pages else context.new_page()
            page.set_default_timeout(WAIT_MS)
            page.on("console", lambda m: errors.append(f"console: {m.text}") if m.type == "error" else None)
            page.on("pageerror", lambda e: errors.append(f"page error: {e}"))
            page.goto(live.url + "/")

            # the ladder shows the live book, and follows it
            expect(page.locator('#asks .level[data-price="100.1"] .size')).to_have_text("3")
            expect(page.locator('#bids .level[data-price="99.95"] .size')).to_have_text("3")
            expect(page.locator("#top-ask")).to_have_text("100.10")
            expect(page.locator("#md-status")).to_have_class(re.compile(r"\bup\b"))
            live.outsider("buy", 7, 9993)
            expect(page.locator('#bids .level[data-price="99.93"] .size')).to_have_text("7")

            # a key connects the account
            page.fill("#api-key", ALICE)
            page.click("#key-connect")
            expect(page.locator("#account-name")).to_have_text("alice")
            expect(page.locator("#fills-status")).to_have_class(re.compile(r"\bup\b"))

            # a limit sell from the ticket rests in the book and in the open orders
            page.click("#side-sell")
            page.fill("#ticket-price", "100.08")
            page.fill("#ticket-size", "2")
            page.click("#ticket-submit")
            expect(page.locator("#ticket-result")).to_contain_text("open")
            level = page.locator('#asks .level[data-price="100.08"]')
            expect(level.locator(".size")).to_have_text("2")
            expect(level.locator(".mine")).to_have_text("2")
            row = page.locator("#orders tbody tr[data-order]")
            expect(row).to_have_count(1)
            order_id = row.get_attribute("data-order")
            assert order_id is not None

            # another account crosses it: a fill, the level gone, a short position
            taken = httpx.post(live.url + "/order", headers={"X-API-Key": BOB}, timeout=10,
                               json={"client_id": "bob", "side": "buy", "price": 100.08, "size": 2}).json()  # fmt: skip
            assert taken["state"] == "filled"
            fill = page.locator(f'#fills tbody tr[data-order="{order_id}"]')
            expect(fill).to_have_count(1)
            expect(fill).to_contain_text("maker")
            expect(level).to_have_count(0)
            expect(page.locator("#orders tbody tr[data-order]")).to_have_count(0)
            expect(page.locator("#risk-position")).to_have_text("-2")
            expect(page.locator("#tape tbody tr")).to_have_count(1)

            # a bid from the ticket, then its cancel button
            page.click("#side-buy")
            page.fill("#ticket-price", "99.97")
            page.fill("#ticket-size", "1")
            page.click("#ticket-submit")
            bid = page.locator('#bids .level[data-price="99.97"]')
            expect(bid.locator(".mine")).to_have_text("1")
            page.locator("#orders tbody button.cancel").click()
            expect(bid).to_have_count(0)
            expect(page.locator("#orders tbody tr[data-order]")).to_have_count(0)

            # some movement for the chart and the tape, then the picture
            for step in range(8):  # bids step up, and each step lifts the best ask
                live.outsider("buy", 2, 9996 + step)
                live.outsider("buy", 1, 10030, client=OTHER_OUTSIDER)
                live.outsider("sell", 2, 10016 + 2 * step)
                page.wait_for_timeout(150)
            page.fill("#ticket-price", "99.96")
            page.click("#ticket-submit")
            expect(page.locator("#orders tbody tr[data-order]")).to_have_count(1)
            expect(page.locator("#tape tbody tr")).to_have_count(9)
            page.wait_for_timeout(300)
            assert page.evaluate("document.getElementById('chart').toDataURL().length") > 5000  # not blank
            shot = ROOT / "build" / "artifacts" / "dashboard.png"
            shot.parent.mkdir(parents=True, exist_ok=True)
            page.screenshot(path=str(shot))
            if os.environ.get("PROPTRADE_UPDATE_SCREENSHOT") == "1":
                shutil.copyfile(shot, ROOT / "docs" / "img" / "dashboard.png")
        finally:
            context.close()
    assert errors == []
