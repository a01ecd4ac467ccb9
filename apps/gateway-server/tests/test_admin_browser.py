"""The admin console in a real headless Chromium (selenium), under load from a traffic generator.

One gateway per server (uvicorn on asyncio, hypercorn on trio), one browser.
The test logs in (a wrong password first: refused and counted), watches the
overview fill as traffic flows, changes the per-IP rate limit in the form
and sees the next requests refused with 429, blocks a client and unblocks it,
and checks that a write without the CSRF header is refused. It takes a
screenshot of each view; with ``SIPP_ADMIN_SCREENSHOTS=<dir>`` they are
copied there (that is how ``docs/images/admin-*.png`` were made).

Needs Debian's ``chromium`` and ``chromium-driver`` (``.ci/run`` installs them);
skipped with that message where they are missing.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from admin_configs import ADMIN_ENV, ADMIN_PASSWORD, CONSOLE
from gwtest import LIMITED_TOKEN, TOKEN, Gateway, start_gateway

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
DRIVER = shutil.which("chromedriver")
if CHROMIUM is None or DRIVER is None:
    pytest.skip(
        "chromium and chromium-driver are not installed (apt-get install -y chromium "
        "chromium-driver): the admin console browser tests need them",
        allow_module_level=True,
    )

from selenium import webdriver  # noqa: E402
from selenium.common.exceptions import StaleElementReferenceException  # noqa: E402
from selenium.webdriver.chrome.service import Service  # noqa: E402
from selenium.webdriver.common.by import By  # noqa: E402
from selenium.webdriver.support.ui import WebDriverWait  # noqa: E402

WAIT = 20.0


class Traffic:
    """Requests to the public listener from two addresses and two callers, until stopped."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.sent = 0
        self._stop = threading.Event()
        self._threads = [
            threading.Thread(target=self._run, args=(address, token), daemon=True)
            for address, token in (("127.0.0.71", TOKEN), ("127.0.0.72", LIMITED_TOKEN))
        ]

    def __enter__(self) -> Traffic:
        for thread in self._threads:
            thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join(10)

    def _run(self, address: str, token: str) -> None:
        transport = httpx.HTTPTransport(local_address=address)
        good = {"authorization": f"Bearer {token}"}
        bad = {"authorization": "Bearer wrong-token"}
        requests: list[tuple[str, dict[str, Any], dict[str, str]]] = [
            ("/v1/query", {"model": "echo", "prompt": "hello there"}, good),
            ("/v1/query", {"model": "words", "prompt": "go"}, good),
            (
                "/v1/chat",
                {"model": "words", "messages": [{"role": "user", "content": "go"}], "stream": True},
                good,
            ),
            ("/v1/query", {"model": "slow", "prompt": "go", "stream": True}, good),
            ("/v1/query", {"model": "echo", "prompt": "hi"}, good),
            ("/v1/query", {"model": "broken", "prompt": "go"}, good),
            ("/v1/query", {"model": "echo", "prompt": "hi"}, bad),
        ]
        with httpx.Client(base_url=self.url, transport=transport, timeout=10) as client:
            index = 0
            while not self._stop.is_set():
                path, body, headers = requests[index % len(requests)]
                index += 1
                with contextlib.suppress(httpx.HTTPError):
                    client.post(path, json=body, headers=headers)
                self.sent += 1
                time.sleep(0.03)


@pytest.fixture(scope="module")
def browser(tmp_path_factory: pytest.TempPathFactory) -> Iterator[webdriver.Chrome]:
    options = webdriver.ChromeOptions()
    assert CHROMIUM is not None
    options.binary_location = CHROMIUM
    profile = tmp_path_factory.mktemp("chromium-profile")
    for flag in (
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--no-first-run",
        "--disable-dev-shm-usage",
        "--window-size=1280,860",
        "--force-device-scale-factor=1",
        f"--user-data-dir={profile}",
    ):
        options.add_argument(flag)
    driver = webdriver.Chrome(options=options, service=Service(executable_path=DRIVER))
    try:
        yield driver
    finally:
        driver.quit()


@pytest.fixture
def gateway(backend: str) -> Iterator[Gateway]:
    gateway = start_gateway(CONSOLE, backend, env=ADMIN_ENV)
    yield gateway
    gateway.stop()


def _public(address: str, url: str) -> httpx.Client:
    return httpx.Client(
        base_url=url, transport=httpx.HTTPTransport(local_address=address), timeout=10
    )


def _status(client: httpx.Client) -> int:
    body = {"model": "echo", "prompt": "hi"}
    return client.post(
        "/v1/query", json=body, headers={"authorization": f"Bearer {TOKEN}"}
    ).status_code


def _text(driver: webdriver.Chrome, css: str) -> str:
    # Read in one script call: the page re-renders every 2 s, so a held element goes stale.
    script = "const e = document.querySelector(arguments[0]); return e ? e.innerText : '';"
    return str(driver.execute_script(script, css))


def test_console_in_a_browser_under_load(
    browser: webdriver.Chrome, gateway: Gateway, backend: str, tmp_path: Path
) -> None:
    driver = browser
    wait = WebDriverWait(
        driver, WAIT, poll_frequency=0.1, ignored_exceptions=[StaleElementReferenceException]
    )
    shots: list[Path] = []

    def until(check: Callable[[webdriver.Chrome], Any]) -> Any:
        return wait.until(check)

    def shoot(name: str) -> None:
        path = tmp_path / f"admin-{name}.png"
        driver.save_screenshot(str(path))
        shots.append(path)

    def view(name: str) -> None:
        driver.find_element(By.CSS_SELECTOR, f"#tabs button[data-view={name}]").click()
        until(lambda d: d.execute_script("return document.body.dataset.loaded") == name)

    # Logged out, the console sends the browser to the login form.
    driver.get(f"{gateway.management}/admin")
    until(lambda d: d.current_url.endswith("/admin/login"))
    # A wrong password is refused (and counted below).
    driver.find_element(By.ID, "password").send_keys("not the password")
    driver.find_element(By.ID, "login-button").click()
    until(lambda d: "Wrong password" in _text(d, "#login-error"))
    shoot("login")
    field = driver.find_element(By.ID, "password")
    field.clear()
    field.send_keys(ADMIN_PASSWORD)
    driver.find_element(By.ID, "login-button").click()
    until(lambda d: d.current_url.endswith("/admin"))
    until(lambda d: d.execute_script("return document.body.dataset.loaded") == "overview")
    assert _text(driver, "#card-logins").endswith("1")  # the wrong password, counted
    assert _text(driver, "#status") == "ready"

    with Traffic(gateway.url) as traffic:
        # The overview fills as traffic flows: rates, latency, TTFT, tokens, and the charts.
        driver.find_element(By.CSS_SELECTOR, ".range button[data-window='300']").click()
        until(lambda d: _text(d, "#card-rps").split()[-1] not in ("0", "0.00"))
        until(lambda d: "–" not in _text(d, "#card-ttft"))
        until(lambda d: _text(d, "#card-tokens").split()[-1] not in ("0", "0.0"))
        script = "return [...document.querySelectorAll('#charts path.line0')].map(p => p.getAttribute('d'))"  # noqa: E501
        paths = driver.execute_script(script)
        assert len(paths) == 6 and "L" in paths[0]  # requests/s has a line, not just points
        # One more refresh with more traffic in it; longer for the docs' pictures.
        time.sleep(45 if os.environ.get("SIPP_ADMIN_SCREENSHOTS") else 2.5)
        shoot("overview")

        view("targets")
        until(lambda d: "words" in _text(d, "#targets-table"))
        shoot("targets")
        view("clients")
        until(lambda d: "127.0.0.72" in _text(d, "#clients-table"))
        assert "batch" in _text(driver, "#callers-table")
        shoot("clients")
        view("recent")
        until(lambda d: "web-app" in _text(d, "#recent-table"))
        shoot("recent")

        # Change the per-IP rate limit in the form; the next requests are refused with 429.
        view("controls")
        driver.find_element(By.ID, "ip-rpm").send_keys("6")
        burst = driver.find_element(By.ID, "ip-burst")
        burst.clear()
        burst.send_keys("2")
        driver.find_element(By.ID, "ip-limit-apply").click()
        until(lambda d: "6/min, burst 2" in _text(d, "#ip-limit-now"))
        with _public("127.0.0.61", gateway.url) as client:
            statuses = [_status(client) for _ in range(4)]
        assert statuses[:2] == [200, 200] and statuses[-1] == 429

        # Block a client, then unblock it.
        driver.find_element(By.ID, "block-address").send_keys("127.0.0.62")
        driver.find_element(By.ID, "block-add").click()
        until(lambda d: "127.0.0.62/32" in _text(d, "#blocklist"))
        with _public("127.0.0.62", gateway.url) as client:
            assert _status(client) == 403
        shoot("controls")
        driver.find_element(By.CSS_SELECTOR, "button[data-unblock='127.0.0.62/32']").click()
        until(lambda d: "127.0.0.62" not in _text(d, "#blocklist"))
        driver.find_element(By.CSS_SELECTOR, "[data-default=ip_rate_limit]").click()
        until(lambda d: "1000" in _text(d, "#ip-limit-now"))
        with _public("127.0.0.62", gateway.url) as client:
            assert _status(client) == 200

        # A write without the CSRF header is refused, even from the logged-in page.
        status = driver.execute_async_script(
            """
            const done = arguments[arguments.length - 1];
            fetch(location.pathname + "/api/controls", {method: "POST",
              headers: {"content-type": "application/json"},
              body: JSON.stringify({control: "ip_rate_limit", value: "none"})})
              .then((r) => done(r.status));
            """
        )
        assert status == 403

        view("audit")
        until(lambda d: "blocklist" in _text(d, "#audit-table"))
        assert "ip_rate_limit" in _text(driver, "#audit-table")
        shoot("audit")
        assert traffic.sent > 50

    # Every view was captured, and nothing secret is on any page.
    source = driver.page_source
    for secret in (TOKEN, LIMITED_TOKEN, ADMIN_PASSWORD, "hello there"):
        assert secret not in source
    assert len(shots) == 7 and all(p.stat().st_size > 10_000 for p in shots)
    target = os.environ.get("SIPP_ADMIN_SCREENSHOTS")
    if target and backend == "asyncio":
        for path in shots:
            shutil.copy(path, Path(target) / path.name)
