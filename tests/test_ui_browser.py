"""`lgbpn ui` in a real browser (headless Chromium through Selenium): upload a photo, wait, download, compare.

Skipped only where Chromium or its driver is absent (Debian: apt-get install chromium chromium-driver;
.ci/run installs them). The photo is the demo's noisy astronaut, or LGBPN_UI_PHOTO; LGBPN_SCREENSHOT=docs/ui.png
also saves the page, result showing, there (docs/ui.png: LGBPN_UI_PHOTO=../shared/data/sidd_samples/noisy/sidd_03.png).
"""

import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import numpy as np
import pytest

from lgbpn.io import Image, read_image, write_image
from lgbpn.synthetic import demo_image

from .helpers import run_cli

CHROMIUM = next(filter(None, map(shutil.which, ("chromium", "chromium-browser", "google-chrome"))), None)
DRIVER = shutil.which("chromedriver")
pytestmark = [pytest.mark.slow, pytest.mark.skipif(
    CHROMIUM is None or DRIVER is None,
    reason="headless Chromium and chromedriver are absent (Debian: apt-get install chromium chromium-driver)")]
STRENGTH = 1.25  # above 1: the second pass too


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def server(tmp_path):
    port = free_port()
    log = (tmp_path / "server.log").open("w")
    process = subprocess.Popen([sys.executable, "-m", "lgbpn", "ui", "--port", str(port)], stdout=log, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}/"
    try:
        for _ in range(300):
            try:
                urllib.request.urlopen(url, timeout=1).close()
                break
            except OSError:
                assert process.poll() is None, (tmp_path / "server.log").read_text()
                time.sleep(0.1)
        yield url
    finally:
        process.terminate()
        process.wait(timeout=20)
        log.close()


@pytest.fixture
def browser(tmp_path):
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for argument in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--window-size=1500,1000"):
        options.add_argument(argument)
    options.add_experimental_option("prefs", {"download.default_directory": str(tmp_path / "downloads"),
                                              "download.prompt_for_download": False})
    driver = webdriver.Chrome(options=options, service=Service(DRIVER))
    yield driver
    driver.quit()


def test_upload_wait_download_equals_lgbpn_denoise(server, browser, tmp_path):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support import expected_conditions
    from selenium.webdriver.support.ui import WebDriverWait

    photo = Path(os.environ.get("LGBPN_UI_PHOTO", tmp_path / "astronaut.png"))
    if not photo.exists():
        write_image(photo, Image(demo_image()[1], None, None, "PNG"))
    height, width = read_image(photo).pixels.shape[:2]
    result = f"{photo.stem}_denoised.png"
    browser.get(server)
    wait = WebDriverWait(browser, 60)
    wait.until(lambda b: b.execute_script("return document.getElementById('model').options.length") > 1)
    browser.execute_script("const s = document.getElementById('strength'); s.value = arguments[0];"
                           "s.dispatchEvent(new Event('input')); s.dispatchEvent(new Event('change'));", STRENGTH)
    browser.find_element(By.ID, "files").send_keys(str(photo))
    link = wait.until(expected_conditions.visibility_of_element_located((By.ID, "download")))
    assert result in link.text
    info = browser.find_element(By.ID, "info").text
    assert f"{width} x {height}, 8-bit PNG" in info and "before" in info and "after" in info, info
    link.click()
    downloaded = tmp_path / "downloads" / result
    WebDriverWait(browser, 30).until(lambda b: downloaded.exists())
    expected = tmp_path / "cli.png"
    assert run_cli("denoise", photo, "-o", expected, "--strength", STRENGTH).exit_code == 0
    assert np.array_equal(read_image(downloaded).pixels, read_image(expected).pixels)

    assert browser.execute_script("return document.querySelector('#zoom .after').naturalWidth") == width  # 1:1
    screenshot = Path(os.environ.get("LGBPN_SCREENSHOT", tmp_path / "ui.png"))
    assert browser.save_screenshot(str(screenshot))
    assert read_image(screenshot).pixels.std() > 10  # a page with photos, not a blank one
