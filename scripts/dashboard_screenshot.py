"""A screenshot of `pushcut dashboard` over a trial database, in headless Chromium (Debian's chromium and
chromium-driver, installed by scripts/setup.sh; Selenium is in the dev extra).

    python scripts/dashboard_screenshot.py --db runs/quickstart/trials.db --tab Comparison --out docs/img/quickstart.png
"""

from __future__ import annotations

import argparse
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

from selenium import webdriver
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_until(check, timeout_s: float, what: str) -> None:
    deadline = time.monotonic() + timeout_s
    while not check():
        if time.monotonic() > deadline:
            raise SystemExit(f"timed out waiting for {what}")
        time.sleep(0.3)


def healthy(url: str) -> bool:
    try:
        with urllib.request.urlopen(f"{url}/_stcore/health", timeout=2) as reply:
            return reply.read() == b"ok"
    except OSError:
        return False


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--db", type=Path, required=True)
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--tab", default="Comparison", help="Sessions, Comparison or Trials")
    parser.add_argument("--size", default="1400,1100", help="window width,height in pixels")
    args = parser.parse_args()
    chromium, driver_path = shutil.which("chromium"), shutil.which("chromedriver")
    if not (chromium and driver_path):
        raise SystemExit("needs Debian's chromium and chromium-driver (bash scripts/setup.sh installs them)")

    port = free_port()
    url = f"http://127.0.0.1:{port}"
    server = subprocess.Popen([sys.executable, "-m", "pushcut", "dashboard", "--db", str(args.db), "--port", str(port)],
                              stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT)  # fmt: skip
    options = webdriver.ChromeOptions()
    options.binary_location = chromium
    for flag in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                 f"--window-size={args.size}"):  # fmt: skip
        options.add_argument(flag)
    browser = None
    try:
        wait_until(lambda: healthy(url), 90, "the dashboard to start")
        browser = webdriver.Chrome(service=Service(driver_path), options=options)
        browser.get(url)
        tabs = lambda: [t for t in browser.find_elements(By.CSS_SELECTOR, "[data-testid=stTab]") if t.text == args.tab]  # noqa: E731
        wait_until(lambda: tabs(), 60, f"the {args.tab} tab")
        tabs()[0].click()
        time.sleep(5)  # charts render after the data arrives
        args.out.parent.mkdir(parents=True, exist_ok=True)
        browser.save_screenshot(str(args.out))
        print(f"wrote {args.out}")
    finally:
        if browser is not None:
            browser.quit()
        server.terminate()
        server.wait(timeout=15)


if __name__ == "__main__":
    main()
