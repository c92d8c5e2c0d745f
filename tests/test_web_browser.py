"""tfstyle-web in a real browser: headless Chromium, driven by Selenium, on the page.

Debian's chromium and chromium-driver (.ci/run installs them) drive the page as a
person would: files chosen with the file pickers, the knobs set, buttons clicked. The
page's own event stream, images and links are what is checked; the server behind it
is the app on uvicorn with a tiny random-weight VGG16, at 64-128 px.

What the page shows over time (the status line, the picture's address) is recorded in
the page itself by a MutationObserver, so that no change between two polls is missed.
"""

import io
import json
import re
import time
import urllib.request

import pytest
from PIL import Image

pytest.importorskip("starlette", reason="needs the web extra (pip install -e .[test])")
import browser  # noqa: E402  (after the skip: it needs selenium only when run)

if browser.available():
    pytest.skip(browser.available(), allow_module_level=True)

from selenium.webdriver.common.by import By  # noqa: E402
from selenium.webdriver.support.ui import WebDriverWait  # noqa: E402

from conftest import sample_image, synthetic_image  # noqa: E402
from tfstyle.web import app as web  # noqa: E402
from tfstyle.web import engines, settings  # noqa: E402
from tfstyle.web.command import SETTINGS_KEY  # noqa: E402
from web_server import serve  # noqa: E402

RECORDER = """
window.seen = {status: [], picture: []};
const record = () => {
  const status = document.getElementById('status-text').textContent;
  if (window.seen.status[window.seen.status.length - 1] !== status) window.seen.status.push(status);
  const src = document.getElementById('current').getAttribute('src');
  if (src && window.seen.picture[window.seen.picture.length - 1] !== src) window.seen.picture.push(src);
};
new MutationObserver(record).observe(document.body, {subtree: true, childList: true,
  characterData: true, attributes: true, attributeFilter: ['src']});
"""


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    import tensorflow as tf

    from tfstyle import Stylizer
    tf.keras.utils.set_random_seed(0)
    stylizer = Stylizer("vgg16", weights=None, content_layers=["conv2_1"],
                        style_layers=["conv1_1", "conv2_1"], precision="float32")
    rules = settings.Rules(preview_size=64, preview_steps=6, preview_stage_size=32)
    config = web.Config(results=str(tmp_path_factory.mktemp("web")),
                        engine=engines.LocalEngine({"backbone": "vgg16"}, stylizer),
                        model_flags=["--backbone=vgg16", "--weights=none"], rules=rules)
    with serve(config) as served:
        yield served


@pytest.fixture(scope="module")
def driver():
    chromium = browser.chromium(1280, 900)
    chromium.set_page_load_timeout(30)
    yield chromium
    chromium.quit()


@pytest.fixture()
def page(server, driver):
    """The page, fresh, with a photo and a painting from ../shared/images chosen, the
    size set to 96 px, and the recorder installed."""
    driver.get(server.url)
    wait(driver, lambda d: d.find_element(By.ID, "engine").text)
    choose(driver, "photo-input", sample_image("tubingen.jpg"))
    choose(driver, "style-input", sample_image("starry_night.jpg"))
    wait(driver, lambda d: len(d.find_elements(By.CSS_SELECTOR, "#style-thumbs img")) == 1
         and len(d.find_elements(By.CSS_SELECTOR, "#photo-thumbs img")) == 1)
    type_into(driver, "size", "96")
    driver.execute_script(RECORDER)
    return driver


def wait(driver, condition, timeout=90):
    from selenium.common.exceptions import StaleElementReferenceException

    # The page replaces a list (the thumbnails) when it changes: an element found just
    # before is then stale, and the condition is simply asked again.
    return WebDriverWait(driver, timeout, poll_frequency=0.05,
                         ignored_exceptions=[StaleElementReferenceException]).until(condition)


def choose(driver, input_id, path):
    driver.find_element(By.ID, input_id).send_keys(str(path))


def type_into(driver, element_id, text):
    element = driver.find_element(By.ID, element_id)
    element.clear()
    element.send_keys(text)


def open_advanced(driver):
    details = driver.find_element(By.CSS_SELECTOR, "details.advanced")
    if not details.get_attribute("open"):
        details.find_element(By.TAG_NAME, "summary").click()


def visible(driver, element_id):
    return driver.find_element(By.ID, element_id).is_displayed()


def fetch(driver, server):
    """The download link's file, fetched as the browser would (same server)."""
    href = driver.find_element(By.ID, "download").get_attribute("href")
    assert href.startswith(server.url)
    with urllib.request.urlopen(href, timeout=30) as response:
        return response.headers["Content-Type"], response.read()


def png_settings(data):
    image = Image.open(io.BytesIO(data))
    return image, json.loads(image.text[SETTINGS_KEY])


def seen(driver):
    return driver.execute_script("return window.seen")


def test_a_job_shows_its_progress_and_growing_picture_and_ends_in_a_png(page, server):
    open_advanced(page)
    type_into(page, "steps", "60")
    page.find_element(By.ID, "run").click()
    wait(page, lambda d: visible(d, "download"))
    record = seen(page)
    steps = [s for s in record["status"] if re.search(r"step \d+/", s)]
    assert len(steps) >= 3, record["status"]  # progress events arrived, one after another
    counts = [int(re.search(r"step (\d+)/60", s).group(1)) for s in steps]
    # The stream sends the job's state as it is when it wakes, so the last step or two
    # may arrive folded into the final "done" state: the count only climbs to 60.
    assert counts == sorted(counts) and counts[-1] <= 60
    assert any("left" in s for s in steps)  # the time left
    assert len(set(record["picture"])) >= 3, record["picture"]  # the picture changed
    done = page.find_element(By.ID, "status-text").text
    assert done.startswith("done: 96×") and ", 60 steps" in done, done
    kind, data = fetch(page, server)
    assert kind == "image/png"
    image, saved = png_settings(data)
    assert max(image.size) == 96 and saved["options"]["steps"] == 60
    assert saved["photo"] == "tubingen.jpg" and saved["paintings"] == ["starry_night.jpg"]
    assert "--steps=60" in saved["command"] and "--size=96" in saved["command"]
    assert page.find_element(By.ID, "download").text == "Download PNG"


def test_a_painting_dropped_on_the_page_is_added_with_a_thumbnail(page):
    # A drop as the browser delivers it: a DataTransfer holding a file, here a PNG drawn
    # on a canvas in the page itself.
    page.execute_script("""
        const canvas = document.createElement('canvas');
        canvas.width = 40; canvas.height = 30;
        const g = canvas.getContext('2d');
        g.fillStyle = '#c8553d'; g.fillRect(0, 0, 40, 30);
        g.fillStyle = '#2d3047'; g.fillRect(10, 5, 20, 20);
        canvas.toBlob((blob) => {
          const transfer = new DataTransfer();
          transfer.items.add(new File([blob], 'dropped.png', {type: 'image/png'}));
          const zone = document.getElementById('style-drop');
          zone.dispatchEvent(new DragEvent('dragover', {dataTransfer: transfer, bubbles: true}));
          zone.dispatchEvent(new DragEvent('drop', {dataTransfer: transfer, bubbles: true}));
        }, 'image/png');""")
    wait(page, lambda d: len(d.find_elements(By.CSS_SELECTOR, "#style-thumbs img")) == 2)
    names = [e.text for e in page.find_elements(By.CSS_SELECTOR, "#style-thumbs .name")]
    assert names[1] == "dropped.png"
    # Two paintings: each gets its blend weight, labelled.
    assert len(page.find_elements(By.CSS_SELECTOR, "#style-thumbs input[type=range]")) == 2


def test_stop_midway_keeps_the_image_so_far(page, server):
    open_advanced(page)
    type_into(page, "steps", "100000")
    page.find_element(By.ID, "run").click()
    wait(page, lambda d: "step" in d.find_element(By.ID, "status-text").text
         and "step 0/" not in d.find_element(By.ID, "status-text").text)
    page.find_element(By.ID, "stop").click()
    wait(page, lambda d: visible(d, "download"))
    assert page.find_element(By.ID, "download").text == "Download PNG (so far)"
    assert "the image so far is kept" in page.find_element(By.ID, "status-text").text
    assert not visible(page, "stop")
    image, saved = png_settings(fetch(page, server)[1])
    assert saved["finished"] == "stopped" and 0 < saved["steps_done"] < 100000
    assert max(image.size) == 96


def test_a_file_that_is_not_an_image_gets_a_clear_message(page, tmp_path):
    notes = tmp_path / "notes.txt"
    notes.write_text("a shopping list, not a photo")
    choose(page, "photo-input", notes)
    wait(page, lambda d: visible(d, "error"))
    message = page.find_element(By.ID, "error").text
    assert "'notes.txt' is not an image file" in message
    # The photo chosen before stays.
    assert len(page.find_elements(By.CSS_SELECTOR, "#photo-thumbs img")) == 1


def test_the_strength_strip_previews_three_and_runs_the_one_picked(page, server):
    page.find_element(By.ID, "preview").click()
    buttons = "#strip-items button"
    wait(page, lambda d: len(d.find_elements(By.CSS_SELECTOR, buttons)) == 3 and all(
        b.is_enabled() for b in d.find_elements(By.CSS_SELECTOR, buttons)))
    previews = page.find_elements(By.CSS_SELECTOR, "#strip-items img")
    assert len(previews) == 3
    assert [b.text for b in page.find_elements(By.CSS_SELECTOR, buttons)] == [
        "Use 0.25", "Use 0.5", "Use 0.9"]
    assert all(page.execute_script("return arguments[0].naturalWidth", p) == 64
               for p in previews)  # fast.cfg's preview size, here scaled to 64 px
    open_advanced(page)
    type_into(page, "steps", "20")
    page.find_elements(By.CSS_SELECTOR, buttons)[2].click()
    wait(page, lambda d: visible(d, "download"))
    assert page.find_element(By.ID, "strength").get_attribute("value") == "0.9"
    image, saved = png_settings(fetch(page, server)[1])
    assert saved["options"]["style_strength"] == 0.9 and max(image.size) == 96
    assert saved["kind"] == "image" and "--style_strength=0.9" in saved["command"]


def test_a_clip_shows_frame_k_of_n_advancing_and_downloads_as_mp4(page, server, tmp_path):
    pytest.importorskip("av", reason="needs the video extra")
    pytest.importorskip("cv2", reason="needs the video extra")
    from video_clips import pan_clip, write_clip

    clip = write_clip(pan_clip(synthetic_image(5, 96, 128), 6, 4, (64, 48)),
                      tmp_path / "walk.mp4", fps=10)
    choose(page, "photo-input", clip)
    wait(page, lambda d: "(video)" in d.find_element(By.CSS_SELECTOR, "#photo-thumbs .name").text)
    open_advanced(page)
    assert visible(page, "video-fields") and not page.find_element(By.ID, "preview").is_enabled()
    type_into(page, "size", "64")
    type_into(page, "steps", "6")
    type_into(page, "frames", "4")
    type_into(page, "frame-steps", "3")
    page.find_element(By.ID, "run").click()
    wait(page, lambda d: visible(d, "download"))
    frames = [s.split(" · ")[0] for s in seen(page)["status"] if s.startswith("Frame ")]
    order = list(dict.fromkeys(frames))
    assert order[-1] == "Frame 4/4" and len(order) >= 3, frames  # k/N advanced
    assert order == sorted(order), order
    kind, data = fetch(page, server)
    assert kind == "video/mp4" and data[4:8] == b"ftyp"
    assert page.find_element(By.ID, "download").text == "Download MP4"


def test_at_phone_width_the_picture_leads_and_the_keyboard_reaches_every_control(page):
    from selenium.webdriver.common.action_chains import ActionChains
    from selenium.webdriver.common.keys import Keys

    browser.set_width(page, 390, 844)
    try:
        time.sleep(0.2)
        scroll, inner = page.execute_script(
            "return [document.documentElement.scrollWidth, window.innerWidth]")
        assert scroll <= inner, "the page scrolls sideways at 390 px"
        picture = page.find_element(By.ID, "picture").rect
        controls = page.find_element(By.ID, "controls").rect
        assert picture["width"] >= 330 and picture["y"] < controls["y"]
        # From the top of the page, as a keyboard user starts: the skip link first.
        page.execute_script("document.querySelector('.skip').focus()")
        reached, rings = [], {}
        for _ in range(30):
            ActionChains(page).send_keys(Keys.TAB).perform()
            focused = page.execute_script("""
                const e = document.activeElement;
                const ring = e.type === 'file' ? e.closest('label') : e;
                return [e.id || e.tagName.toLowerCase(), getComputedStyle(ring).outlineStyle]""")
            reached.append(focused[0])
            rings[focused[0]] = focused[1]
        for control in ("photo-input", "style-input", "strength", "size", "colors", "summary",
                        "run", "preview"):
            assert control in reached, reached
            assert rings[control] == "solid", (control, rings[control])
        assert reached.index("photo-input") < reached.index("style-input") < \
            reached.index("strength") < reached.index("run")
        unlabelled = page.execute_script("""
            return [...document.querySelectorAll('input, select')]
              .filter(e => !(e.labels && e.labels.length) && !e.getAttribute('aria-label'))
              .map(e => e.id)""")
        assert unlabelled == []
    finally:
        browser.set_width(page, 1280, 900)
