"""The browsing page in a real browser: headless Chromium (Debian ``chromium`` + ``chromium-driver``) via selenium.

A real uvicorn server on 127.0.0.1 serves the tiny run; the browser loads ``/``, picks a user, and the
recommendations it shows must equal the API's. Skipped where Chromium is absent, except under ``CI=true``
(CI installs it, so there a missing browser is a failure).
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import threading
import time
import urllib.request
from collections.abc import Iterator

import pytest

pytestmark = pytest.mark.browser

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
DRIVER = shutil.which("chromedriver")


def _require_browser() -> None:
    missing = [name for name, path in (("chromium", CHROMIUM), ("chromedriver", DRIVER)) if path is None]
    try:
        import selenium  # noqa: F401
    except ModuleNotFoundError:
        missing.append("selenium")
    if not missing:
        return
    message = f"browser test needs {', '.join(missing)} (Debian: apt-get install chromium chromium-driver)"
    if os.environ.get("CI") == "true":
        pytest.fail(message)
    pytest.skip(message)


@pytest.fixture(scope="module")
def server_url(tiny_loaded) -> Iterator[str]:
    _require_browser()
    import uvicorn

    from cllm4rec.serving.http import ServeOptions, create_app

    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))  # loopback only, any free port
    port = sock.getsockname()[1]
    config = uvicorn.Config(create_app(tiny_loaded, ServeOptions(api_key="")), log_level="warning", access_log=False)
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 30
    while not server.started:
        if time.monotonic() > deadline or not thread.is_alive():
            raise RuntimeError("uvicorn did not start")
        time.sleep(0.05)
    yield url
    server.should_exit = True
    thread.join(timeout=10)
    sock.close()


@pytest.fixture(scope="module")
def browser(server_url: str):
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in (
        "--headless=new",
        "--no-sandbox",
        "--disable-dev-shm-usage",
        "--disable-gpu",
        "--window-size=1280,900",
    ):
        options.add_argument(flag)
    driver = webdriver.Chrome(service=Service(executable_path=DRIVER), options=options)
    driver.set_page_load_timeout(30)
    yield driver
    driver.quit()


def _get_json(url: str):
    with urllib.request.urlopen(url, timeout=30) as response:  # loopback only
        return json.load(response)


def _wait(driver, condition, timeout: float = 30.0):
    from selenium.webdriver.support.ui import WebDriverWait

    return WebDriverWait(driver, timeout).until(condition)


def test_page_shows_the_apis_recommendations(browser, server_url: str) -> None:
    from selenium.webdriver.common.by import By

    browser.get(server_url + "/")
    _wait(browser, lambda d: d.find_element(By.TAG_NAME, "body").get_attribute("data-state") == "ready")
    assert "tiny-llama" in browser.find_element(By.ID, "run-info").text
    options = browser.find_elements(By.CSS_SELECTOR, "#user-list option")
    assert [o.get_attribute("value") for o in options][:3] == ["u0", "u1", "u2"]

    user_box = browser.find_element(By.ID, "user")
    user_box.clear()
    user_box.send_keys("u4")
    k_box = browser.find_element(By.ID, "k")
    k_box.clear()
    k_box.send_keys("6")
    browser.find_element(By.ID, "show").click()
    _wait(browser, lambda d: d.find_element(By.ID, "results").get_attribute("data-state") == "ready")

    rows = browser.find_elements(By.CSS_SELECTOR, "#recs tbody tr")
    shown = [r.get_attribute("data-item") for r in rows]
    api = _get_json(f"{server_url}/v1/recommend?user=u4&k=6")
    assert shown == [item["item"] for item in api["items"]]
    titles = [r.find_elements(By.TAG_NAME, "td")[2].text for r in rows]
    assert titles == [item["title"] for item in api["items"]]
    history = [li.get_attribute("data-item") for li in browser.find_elements(By.CSS_SELECTOR, "#history-list li")]
    assert history == [h["item"] for h in _get_json(f"{server_url}/v1/users/u4")["history"]]

    rows[0].click()  # explanation for the top item
    _wait(browser, lambda d: d.find_element(By.ID, "explanation").get_attribute("data-state") == "ready")
    explained = _get_json(f"{server_url}/v1/explain?user=u4&item={shown[0]}")
    assert browser.find_element(By.ID, "explain-text").text == (explained["text"] or "(no text generated)")


def test_page_new_user_history_and_errors(browser, server_url: str) -> None:
    from selenium.webdriver.common.by import By

    browser.get(server_url + "/")
    _wait(browser, lambda d: d.find_element(By.TAG_NAME, "body").get_attribute("data-state") == "ready")
    k_box = browser.find_element(By.ID, "k")
    k_box.clear()
    k_box.send_keys("5")
    browser.find_element(By.ID, "history").send_keys("i1, i4 i9")
    browser.find_element(By.ID, "show-history").click()
    _wait(browser, lambda d: d.find_element(By.ID, "results").get_attribute("data-state") == "ready")
    shown = [r.get_attribute("data-item") for r in browser.find_elements(By.CSS_SELECTOR, "#recs tbody tr")]
    request = urllib.request.Request(
        f"{server_url}/v1/recommend",
        data=json.dumps({"history": ["i1", "i4", "i9"], "k": 5}).encode(),
        headers={"Content-Type": "application/json"},
    )
    with urllib.request.urlopen(request, timeout=30) as response:
        assert shown == [item["item"] for item in json.load(response)["items"]]

    user_box = browser.find_element(By.ID, "user")
    user_box.clear()
    user_box.send_keys("nobody")
    browser.find_element(By.ID, "show").click()
    _wait(browser, lambda d: d.find_element(By.ID, "results").get_attribute("data-state") == "error")
    assert "404" in browser.find_element(By.ID, "error").text
