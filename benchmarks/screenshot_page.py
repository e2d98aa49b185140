"""Screenshot of the browsing page (``GET /``) for the README: serve a run on 127.0.0.1, pick a user in headless
Chromium, click the top recommendation for its explanation, save a PNG.

    python benchmarks/screenshot_page.py --run RUN --user ID --out docs/serve_page.png [--k 10] [--port 8766]
"""

from __future__ import annotations

import argparse
import shutil
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--run", required=True)
    parser.add_argument("--user", required=True, help="external ID of the user to show")
    parser.add_argument("--out", required=True, help="PNG file to write")
    parser.add_argument("--k", type=int, default=10)
    parser.add_argument("--port", type=int, default=8766)
    args = parser.parse_args()

    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    url = f"http://127.0.0.1:{args.port}"
    cmd = [sys.executable, "-m", "cllm4rec.cli.main", "serve", "--run", args.run, "--port", str(args.port)]
    server = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    driver = None
    try:
        deadline = time.monotonic() + 300
        while True:
            try:
                urllib.request.urlopen(url + "/health", timeout=2).read()
                break
            except OSError:
                if time.monotonic() > deadline or server.poll() is not None:
                    raise SystemExit("server did not start") from None
                time.sleep(0.5)
        options = webdriver.ChromeOptions()
        options.binary_location = shutil.which("chromium") or ""
        for flag in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--window-size=1280,1250"):
            options.add_argument(flag)
        driver = webdriver.Chrome(service=Service(executable_path=shutil.which("chromedriver")), options=options)
        wait = WebDriverWait(driver, 120)
        driver.get(url + "/")
        wait.until(lambda d: d.find_element(By.TAG_NAME, "body").get_attribute("data-state") == "ready")
        driver.find_element(By.ID, "user").send_keys(args.user)
        k_box = driver.find_element(By.ID, "k")
        k_box.clear()
        k_box.send_keys(str(args.k))
        driver.find_element(By.ID, "show").click()
        wait.until(lambda d: d.find_element(By.ID, "results").get_attribute("data-state") == "ready")
        driver.find_elements(By.CSS_SELECTOR, "#recs tbody tr")[0].click()
        wait.until(lambda d: d.find_element(By.ID, "explanation").get_attribute("data-state") in ("ready", "error"))
        Path(args.out).parent.mkdir(parents=True, exist_ok=True)
        driver.save_screenshot(args.out)
        print(f"wrote {args.out}")
    finally:
        if driver is not None:
            driver.quit()
        server.send_signal(signal.SIGINT)
        try:
            server.wait(timeout=30)
        except subprocess.TimeoutExpired:
            server.kill()
    return 0


if __name__ == "__main__":
    sys.exit(main())
