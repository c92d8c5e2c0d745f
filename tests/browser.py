"""Headless Chromium (Debian's chromium and chromium-driver) through Selenium, for the
page's browser test and the README's screenshots.

No browser is downloaded: Selenium drives /usr/bin/chromium with /usr/bin/chromedriver.
The flags keep Chromium off the network (its background connections are refused on a
closed machine and slow it down) and in a fresh profile.
"""

from __future__ import annotations

import importlib.util
import os
import shutil
import tempfile

CHROMIUM = "/usr/bin/chromium"
CHROMEDRIVER = "/usr/bin/chromedriver"
FLAGS = ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-quic",
         "--no-first-run", "--disable-background-networking", "--disable-component-update",
         "--disable-sync", "--disable-dev-shm-usage", "--hide-scrollbars")


def available() -> str:
    """"" where the browser can run here, else why not."""
    for path in (CHROMIUM, CHROMEDRIVER):
        if not os.path.exists(path):
            return f"{path} is missing (apt-get install chromium chromium-driver)"
    if importlib.util.find_spec("selenium") is None:
        return "selenium is not installed (pip install -e .[test])"
    return ""


def chromium(width=1280, height=900):
    """A started headless Chromium of that window size; ``quit()`` it when done."""
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    profile = tempfile.mkdtemp(prefix="tfstyle-chromium-")
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in FLAGS + (f"--user-data-dir={profile}", f"--window-size={width},{height}"):
        options.add_argument(flag)
    driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)
    quit_driver = driver.quit

    def quit_and_clean():
        try:
            quit_driver()
        finally:
            shutil.rmtree(profile, ignore_errors=True)
    driver.quit = quit_and_clean
    return driver


def set_width(driver, width, height):
    """Makes the page's viewport ``width`` × ``height`` CSS px (a phone: 390 × 844)."""
    driver.execute_cdp_cmd("Emulation.setDeviceMetricsOverride", {
        "width": width, "height": height, "deviceScaleFactor": 1, "mobile": width < 600})


def full_page_png(driver, path, width):
    """A screenshot of the whole page at ``width`` px, however long it is."""
    import base64

    height = driver.execute_script("return document.documentElement.scrollHeight")
    driver.execute_cdp_cmd("Emulation.setDeviceMetricsOverride", {
        "width": width, "height": height, "deviceScaleFactor": 1, "mobile": width < 600})
    shot = driver.execute_cdp_cmd("Page.captureScreenshot", {"format": "png",
                                                              "captureBeyondViewport": True})
    with open(path, "wb") as f:
        f.write(base64.b64decode(shot["data"]))
