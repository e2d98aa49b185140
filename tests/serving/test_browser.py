"""The browsing page in a real browser: headless Chromium (Debian ``chromium`` + ``chromium-driver``) via selenium.

A real uvicorn server on 127.0.0.1 serves the tiny run; the browser loads ``/``, picks a user, and the
recommendations it shows must equal the API's. Skipped where Chromium is absent, except under ``CI=true``
(CI installs it, so there a missing browser is a failure).
"""

from __future__ import annotations

import contextlib
import json
import os
import queue
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


SLOW_ITEMS: set[str] = set()
"""Items whose explanation the test servers make slow (about 3 s, or until the client goes away)."""
SLOW_SECONDS = 3.0
SLOW_ENDED: queue.SimpleQueue[bool] = queue.SimpleQueue()
"""One entry as each slow explanation ends: whether its client went away first (else it ran its time)."""
KEY = "page-k3y"


def _slow_for_some_items(real):
    def explain(loaded, user, item, options, *, dataset=None, cancel=None):
        if item in SLOW_ITEMS and cancel is not None:
            SLOW_ENDED.put(cancel.wait(SLOW_SECONDS))
        return real(loaded, user, item, options, dataset=dataset, cancel=cancel)

    return explain


@contextlib.contextmanager
def _serve(app) -> Iterator[str]:
    """A real uvicorn server for ``app`` on a free loopback port; yields its URL."""
    import uvicorn

    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))  # loopback only, any free port
    port = sock.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning", access_log=False))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        if time.monotonic() > deadline or not thread.is_alive():
            raise RuntimeError("uvicorn did not start")
        time.sleep(0.05)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=10)
        sock.close()


@pytest.fixture(scope="module")
def patched_explain() -> Iterator[None]:
    from cllm4rec.serving.http import app as app_module

    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(app_module, "explain", _slow_for_some_items(app_module.explain))
        yield


@pytest.fixture(scope="module")
def server_url(tiny_loaded, patched_explain) -> Iterator[str]:
    _require_browser()
    from cllm4rec.serving.http import ServeOptions, create_app

    with _serve(create_app(tiny_loaded, ServeOptions(api_key=""))) as url:
        yield url


@pytest.fixture(scope="module")
def keyed_url(tiny_loaded) -> Iterator[str]:
    _require_browser()
    from cllm4rec.serving.http import ServeOptions, create_app

    with _serve(create_app(tiny_loaded, ServeOptions(api_key=KEY))) as url:
        yield url


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


def _pick_user(browser, server_url: str, user: str, k: int) -> list:
    from selenium.webdriver.common.by import By

    browser.get(server_url + "/")
    _wait(browser, lambda d: d.find_element(By.TAG_NAME, "body").get_attribute("data-state") == "ready")
    user_box = browser.find_element(By.ID, "user")
    user_box.clear()
    user_box.send_keys(user)
    k_box = browser.find_element(By.ID, "k")
    k_box.clear()
    k_box.send_keys(str(k))
    browser.find_element(By.ID, "show").click()
    _wait(browser, lambda d: d.find_element(By.ID, "results").get_attribute("data-state") == "ready")
    return browser.find_elements(By.CSS_SELECTOR, "#recs tbody tr")


def test_a_slow_explanation_never_shows_under_a_later_click(browser, server_url: str) -> None:
    """Click A (slow), then B: B's text stays under B's heading, also after A's would have arrived; while A
    generates, the page shows it is working (a progress bar and a running count of seconds)."""
    from selenium.webdriver.common.by import By

    rows = _pick_user(browser, server_url, "u5", 4)
    first, second = (r.get_attribute("data-item") for r in rows[:2])
    SLOW_ITEMS.clear()
    SLOW_ITEMS.add(first)
    try:
        rows[0].click()
        _wait(browser, lambda d: d.find_element(By.ID, "explanation").get_attribute("data-state") == "loading")
        assert browser.find_element(By.ID, "explain-progress").is_displayed()
        shown = browser.find_element(By.ID, "explain-elapsed").text
        _wait(browser, lambda d: d.find_element(By.ID, "explain-elapsed").text != shown, timeout=5)
        assert "generating" in browser.find_element(By.ID, "explain-elapsed").text
        rows[1].click()
        _wait(browser, lambda d: d.find_element(By.ID, "explanation").get_attribute("data-state") == "ready")
        expected = _get_json(f"{server_url}/v1/explain?user=u5&item={second}")["text"] or "(no text generated)"
        # the click on B aborted A's request, and the server saw it go: A's answer can never reach the page
        assert SLOW_ENDED.get(timeout=SLOW_SECONDS + 30) is True
        section = browser.find_element(By.ID, "explanation")
        assert section.get_attribute("data-item") == second
        assert second in browser.find_element(By.ID, "explain-item").text
        assert browser.find_element(By.ID, "explain-text").text == expected
        assert not browser.find_element(By.ID, "explain-progress").is_displayed()
    finally:
        SLOW_ITEMS.clear()


def test_an_error_clears_the_previous_results(browser, server_url: str) -> None:
    from selenium.webdriver.common.by import By

    rows = _pick_user(browser, server_url, "u4", 5)
    rows[0].click()
    _wait(browser, lambda d: d.find_element(By.ID, "explanation").get_attribute("data-state") == "ready")
    user_box = browser.find_element(By.ID, "user")
    user_box.clear()
    user_box.send_keys("nobody")
    browser.find_element(By.ID, "show").click()
    _wait(browser, lambda d: d.find_element(By.ID, "results").get_attribute("data-state") == "error")
    assert "404" in browser.find_element(By.ID, "error").text
    assert browser.find_elements(By.CSS_SELECTOR, "#recs tbody tr") == []
    assert browser.find_elements(By.CSS_SELECTOR, "#history-list li") == []
    assert not browser.find_element(By.ID, "explanation").is_displayed()


def test_a_keyed_server_asks_for_the_key_and_then_works(browser, keyed_url: str) -> None:
    from selenium.webdriver.common.by import By

    browser.get(keyed_url + "/")
    _wait(browser, lambda d: d.find_element(By.TAG_NAME, "body").get_attribute("data-state") == "need-key")
    assert browser.find_element(By.ID, "key-form").is_displayed()
    box = browser.find_element(By.ID, "api-key")
    box.send_keys("wrong")
    browser.find_element(By.ID, "use-key").click()
    _wait(browser, lambda d: "refused" in d.find_element(By.ID, "error").text)
    box.clear()
    box.send_keys(KEY)
    browser.find_element(By.ID, "use-key").click()
    _wait(browser, lambda d: d.find_element(By.TAG_NAME, "body").get_attribute("data-state") == "ready")
    assert not browser.find_element(By.ID, "key-form").is_displayed()
    rows = _pick_user(browser, keyed_url, "u4", 3)  # the key stays for the tab, across a reload
    assert len(rows) == 3
    browser.execute_script("sessionStorage.clear()")


def test_the_docs_render_from_local_assets_with_an_authorize_button(browser, keyed_url: str) -> None:
    """Swagger UI draws every operation from this server's own files (no internet here), and offers the key."""
    from selenium.webdriver.common.by import By

    browser.get(keyed_url + "/docs")
    _wait(browser, lambda d: len(d.find_elements(By.CSS_SELECTOR, ".opblock")) >= 8)
    assert browser.find_elements(By.CSS_SELECTOR, "button.authorize")
    scripts = [s.get_attribute("src") for s in browser.find_elements(By.TAG_NAME, "script") if s.get_attribute("src")]
    assert scripts and all(s.startswith(keyed_url) for s in scripts)
