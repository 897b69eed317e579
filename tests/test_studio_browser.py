"""The studio as a person uses it: `gankit serve`'s app in headless Chromium (Debian's chromium
driven by Python playwright). Skipped, with the reason printed (`make test` runs pytest -rs), only
where gradio, playwright or Chromium is missing; `.ci/run` installs all three."""

import shutil
import socket

import numpy as np
import pytest
from PIL import Image

gradio = pytest.importorskip("gradio", reason="gradio is not installed (the [web] extra)")
sync_api = pytest.importorskip("playwright.sync_api", reason="playwright is not installed (the [web] extra)")
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
pytestmark = pytest.mark.skipif(CHROMIUM is None, reason="no Chromium on this machine (apt-get install chromium)")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def studio(studio_runs):
    from gankit.studio.app import serve

    port = free_port()
    demo = serve([studio_runs["sg2"], studio_runs["stargan"]], port=port, block=False, warn=lambda line: None)
    yield f"http://127.0.0.1:{port}/"
    demo.close()


@pytest.fixture
def page(studio):
    outside: list[str] = []
    with sync_api.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=[
            "--no-sandbox", "--disable-background-networking", "--disable-component-update"])
        tab = browser.new_page(viewport={"width": 1280, "height": 900})
        tab.on("request", lambda r: outside.append(r.url) if not r.url.startswith(("http://127.0.0.1", "data:", "blob:"))
               else None)
        tab.goto(studio)
        tab.wait_for_selector("text=gankit studio")
        shown(tab)  # the page is up: its first tab has drawn samples
        yield tab
        browser.close()
    assert outside == [], f"the page asked the internet for {outside[:3]}"  # fonts, scripts, analytics


def shown(tab) -> str:
    """The src of the visible result picture (a new request for every new picture)."""
    img = tab.locator(".result img:visible").first
    img.wait_for(timeout=30_000)
    return img.get_attribute("src")


def statuses(tab) -> str:
    return tab.evaluate("() => [...document.querySelectorAll('.status')].map(e => e.innerText).join(' / ')")


def test_samples_on_open_then_a_slider_changes_the_picture(page):
    first = shown(page)
    page.get_by_role("tab", name="Edit").click()
    before = statuses(page)
    box = page.locator(".direction input[type=number]").first
    box.fill("3")
    box.press("Enter")
    page.wait_for_function("() => [...document.querySelectorAll('.status')].some(e => e.innerText.includes('sefa:0 +3'))",
                           timeout=30_000)
    edited = shown(page)
    assert edited != first and "sefa:0 +3" not in before
    # a drag on the next slider: the picture changes again
    bar = page.locator(".direction input[type=range]").nth(1).bounding_box()
    page.mouse.click(bar["x"] + bar["width"] * 0.9, bar["y"] + bar["height"] / 2)
    page.wait_for_function("() => [...document.querySelectorAll('.status')].some(e => e.innerText.includes('sefa:1 +'))",
                           timeout=30_000)
    assert shown(page) != edited


def test_the_latent_walk_plays_as_a_video(page):
    page.get_by_role("tab", name="Latent walk").click()
    page.get_by_role("button", name="Walk").click()
    page.wait_for_function("() => { const v = document.querySelector('video'); return v && v.readyState >= 2; }",
                           timeout=60_000)  # decoded: H.264 plays in Chromium
    assert page.evaluate("() => document.querySelector('video').error") is None
    assert page.evaluate("() => document.querySelector('video').videoWidth") >= 128  # enlarged from 16 px


def test_a_bad_upload_shows_one_line_and_a_good_one_translates(page, tmp_path):
    page.get_by_role("tab", name="stargan").click()
    junk = tmp_path / "holiday.png"
    junk.write_bytes(b"this is not a picture")
    page.locator(".upload input[type=file]").first.set_input_files(str(junk))
    page.get_by_text("holiday.png is not a picture the studio can read").first.wait_for(timeout=30_000)
    good = tmp_path / "digit.png"
    Image.fromarray(np.random.default_rng(0).integers(0, 256, (24, 24, 3), dtype=np.uint8)).save(good)
    page.locator(".upload button[aria-label=Clear]").first.click()  # as a person would: x, then the next file
    page.locator(".upload input[type=file]").first.set_input_files(str(good))
    page.get_by_role("button", name="Translate").click()
    page.get_by_text("input | flip").first.wait_for(timeout=30_000)
    assert shown(page).startswith(("http", "/", "data:"))
