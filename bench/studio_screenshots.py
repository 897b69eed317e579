"""Screenshots of the studio for the README, taken in headless Chromium as a person clicks.

    python bench/studio_screenshots.py --noise RUN [--text RUN] [--upscale RUN --photo IMAGE]
        [--style RUN] [--out docs/images]

Serves the given runs together (``gankit.studio.app.serve``) and writes, for each one given:
studio_sample.png (the noise model's Sample tab), studio_walk.png (its latent walk),
studio_caption.png (the text model's Sample tab with a caption typed in), studio_upscale.png
(the photo uploaded to the super-resolution model), studio_edit.png (the style model's Edit tab
with two sliders moved) and studio_run.png (the noise model's run page).
"""

from __future__ import annotations

import argparse
import shutil
import socket
from pathlib import Path

VIEW = {"width": 1280, "height": 860}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def status_has(page, text: str, timeout: float = 300_000) -> None:
    page.wait_for_function(f"() => [...document.querySelectorAll('.status')].some(e => e.innerText.includes({text!r}))",
                           timeout=timeout)


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--noise", type=Path, required=True, help="a noise-to-image run (sample, walk, run page)")
    p.add_argument("--text", type=Path, help="a stackgan run")
    p.add_argument("--caption", default="a large red seven on a blue background")
    p.add_argument("--upscale", type=Path, help="an srgan run")
    p.add_argument("--photo", type=Path, help="the photo to upscale")
    p.add_argument("--style", type=Path, help="a stylegan2 run (edit sliders)")
    p.add_argument("--out", type=Path, default=Path("docs/images"))
    args = p.parse_args(argv)
    from playwright.sync_api import sync_playwright

    from gankit.studio.app import serve
    from gankit.studio.tools import load_models

    runs = [r for r in (args.noise, args.text, args.upscale, args.style) if r is not None]
    names = list(load_models(runs))  # the tab names the studio gives them
    tab = dict(zip(runs, names))
    port = free_port()
    demo = serve(runs, port=port, block=False)
    args.out.mkdir(parents=True, exist_ok=True)
    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    try:
        with sync_playwright() as pw:
            browser = pw.chromium.launch(executable_path=chromium, headless=True, args=["--no-sandbox"])
            page = browser.new_page(viewport=VIEW)
            page.goto(f"http://127.0.0.1:{port}/")
            status_has(page, "samples, seed")
            page.screenshot(path=str(args.out / "studio_sample.png"))
            page.get_by_role("tab", name="Latent walk").first.click()
            page.get_by_role("button", name="Walk").first.click()
            status_has(page, "frames through")
            page.wait_for_timeout(1500)
            page.screenshot(path=str(args.out / "studio_walk.png"))
            page.get_by_role("tab", name="Run").first.click()
            page.wait_for_timeout(1500)
            page.screenshot(path=str(args.out / "studio_run.png"))
            if args.text:
                page.get_by_role("tab", name=tab[args.text], exact=True).click()
                box = page.get_by_role("textbox", name="caption").first
                box.fill(args.caption)
                page.get_by_role("button", name="Sample").first.click()
                page.wait_for_timeout(500)
                status_has(page, "samples, seed")
                page.wait_for_timeout(1000)
                page.screenshot(path=str(args.out / "studio_caption.png"))
            if args.upscale and args.photo:
                page.get_by_role("tab", name=tab[args.upscale], exact=True).click()
                page.locator(".upload input[type=file]").first.set_input_files(str(args.photo))
                status_has(page, " -> ")
                page.wait_for_timeout(1000)
                page.screenshot(path=str(args.out / "studio_upscale.png"))
            if args.style:
                page.get_by_role("tab", name=tab[args.style], exact=True).click()
                page.get_by_role("tab", name="Edit").first.click()
                for i, value in ((0, "3"), (1, "-2")):
                    box = page.locator(".direction input[type=number]").nth(i)
                    box.fill(value)
                    box.press("Enter")
                    status_has(page, f"sefa:{i} {'+' if not value.startswith('-') else ''}{value}")
                page.wait_for_timeout(1000)
                page.screenshot(path=str(args.out / "studio_edit.png"))
            browser.close()
    finally:
        demo.close()
    print(f"wrote the screenshots to {args.out}")


if __name__ == "__main__":
    main()
