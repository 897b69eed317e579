"""``gankit harmonize | paint | animate`` and singan's ``upscale``: SinGAN's applications on a trained singan run
(Shaham et al. 2019, arXiv:1905.01164, §4), registered in :mod:`gankit.cli`; and
:func:`singan_samples`, the singan options of ``gankit sample``. Thin: parse, call
:mod:`gankit.explore.singan`, write, print one line."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from gankit.cli_outputs import refuse_writing_over_inputs
from gankit.cli_styles import png_out
from gankit.errors import GankitError
from gankit.viz.animation import GIF_MAX_FPS

RUN_HELP = "A singan run or exported model directory."
SEED_HELP = "Seed of the noise (same seed, same picture)."
INJECT_HELP = "Scale K where the input is injected, 1 (coarsest: most change) .. N (finest: least); default N // 2."
MODE_HELP = "harmonization (blend a pasted object) | edit (also writes OUT_unmasked.png)."


def _save(image, out: Path) -> None:
    from gankit.viz import make_grid, save_image

    save_image(make_grid(image, nrow=1, padding=0), out)


def _size_text(image) -> str:
    return f"{image.shape[-2]}x{image.shape[-1]}"


def parse_size(text: str) -> tuple[int, int]:
    """``"64x96"`` -> (64, 96): height x width in pixels."""
    parts = text.lower().replace(",", "x").split("x")
    try:
        h, w = (int(p) for p in parts)
    except ValueError:
        raise GankitError(f"--size takes HEIGHTxWIDTH in pixels, e.g. 64x96, got {text!r}") from None
    return h, w


def singan_samples(model, n: int, *, seed: int = 0, size: Optional[str] = None, scale_h: Optional[float] = None,
                   scale_w: Optional[float] = None, start_scale: Optional[int] = None):
    """The samples ``gankit sample`` writes when any singan option is given: (n, C, H, W) in [-1, 1]
    (:func:`gankit.explore.singan.sample`); None when none is, so the ordinary path draws them.
    The options are refused, in one line, for a model of another family."""
    given = {"--size": size, "--scale-h": scale_h, "--scale-w": scale_w, "--start-scale": start_scale}
    given = [flag for flag, value in given.items() if value is not None]
    if not given:
        return None
    if model.family != "singan":
        raise GankitError(f"{', '.join(given)} apply to singan runs only; {model.source} is a {model.family} model")
    from gankit.explore.singan import sample

    return sample(model, n, seed=seed, size=None if size is None else parse_size(size),
                  scale_h=1.0 if scale_h is None else scale_h, scale_w=1.0 if scale_w is None else scale_w,
                  start_scale=start_scale or 0)


def harmonize_cmd(
    run: Path = typer.Argument(..., help=RUN_HELP),
    input_: Path = typer.Option(..., "--input", help="The training picture with an object pasted in (or edited)."),
    mask: Path = typer.Option(..., "--mask", help="White where pasted or edited, black elsewhere; the input's size."),
    out: Path = typer.Option(..., "--out", help="Output PNG."),
    start_scale: Optional[int] = typer.Option(None, "--start-scale", help=INJECT_HELP),
    mode: str = typer.Option("harmonization", "--mode", help=MODE_HELP),
    seed: int = typer.Option(0, "--seed", help=SEED_HELP),
) -> None:
    """Harmonise a pasted object, or turn a naive edit into a seamless one (SinGAN §4)."""
    from gankit.api import load
    from gankit.explore.singan import default_injection_scale, harmonize

    if mode not in ("harmonization", "edit", "editing"):
        raise GankitError(f"--mode must be harmonization or edit, got {mode!r}")
    png_out(out)
    for given in (input_, mask):
        refuse_writing_over_inputs(given, out)
    model = load(run)
    k = default_injection_scale(model) if start_scale is None else start_scale
    result = harmonize(model, input_, mask, start_scale=k, mode=mode, seed=seed)
    _save(result["output"], out)
    what = f"wrote {out}"
    if mode != "harmonization":
        unmasked = out.with_name(f"{out.stem}_unmasked.png")
        _save(result["unmasked"], unmasked)
        what += f" and {unmasked}"
    typer.echo(f"{what} ({_size_text(result['output'])}, {'editing' if mode != 'harmonization' else mode} "
               f"injected at scale {k}, seed {seed})")


def paint_cmd(
    run: Path = typer.Argument(..., help=RUN_HELP),
    input_: Path = typer.Option(..., "--input", help="A clipart painting of the scene (flat colours)."),
    out: Path = typer.Option(..., "--out", help="Output PNG."),
    start_scale: Optional[int] = typer.Option(None, "--start-scale", help=INJECT_HELP),
    quantize: bool = typer.Option(False, "--quantize", help="Map the painting to the picture's 5 main colours and "
                                  "train the injection scale again on such inputs (the authors' quantization_flag)."),
    retrain_iters: Optional[int] = typer.Option(None, "--retrain-iters", help="With --quantize: iterations of that "
                                                "retraining (default: the run's iters_per_scale)."),
    seed: int = typer.Option(0, "--seed", help=SEED_HELP),
) -> None:
    """Turn a painting into a picture with the training image's textures (SinGAN §4, paint-to-image)."""
    from gankit.api import load
    from gankit.explore.singan import default_injection_scale, paint

    png_out(out)
    refuse_writing_over_inputs(input_, out)
    if retrain_iters is not None and (not quantize or retrain_iters < 1):
        raise GankitError("--retrain-iters sets the retraining of --quantize: give --quantize and a number >= 1")
    model = load(run)
    k = default_injection_scale(model) if start_scale is None else start_scale
    image = paint(model, input_, start_scale=k, quantize=quantize, seed=seed, retrain_iters=retrain_iters)
    _save(image, out)
    typer.echo(f"wrote {out} ({_size_text(image)}, painting injected at scale {k}"
               f"{', colours quantised' if quantize else ''}, seed {seed})")


def singan_upscale(model, input_: Optional[Path], scale: float, out: Path, reference: Optional[Path],
                   seed: int) -> None:
    """``gankit upscale`` for a singan run: SinGAN's finest generator, applied step by step (§4)."""
    from gankit.explore.singan import (as_image, last_scale, pyramid_of, reference_fits, upscale, upscale_scores,
                                       upscaled_size)

    if not scale >= 1:
        raise GankitError(f"--scale must be >= 1, got {scale}")
    png_out(out)
    if input_ is not None:
        refuse_writing_over_inputs(input_, out)
    G = pyramid_of(model)
    low = G.real(last_scale(G)).cpu() if input_ is None else as_image(input_, G.channels, "input")
    ref = None if reference is None else as_image(reference, G.channels, "reference")
    if ref is not None and not reference_fits(ref.shape[-2:], upscaled_size(low.shape[-2:], scale)):
        h, w = upscaled_size(low.shape[-2:], scale)
        raise GankitError(f"--reference is {ref.shape[-2]}x{ref.shape[-1]}, but {scale:g} x the input is {h}x{w}")
    image = upscale(model, low, scale=scale, seed=seed)
    scores = None if ref is None else upscale_scores(image, ref, low)
    _save(image, out)
    line = f"wrote {out} ({_size_text(low)} -> {_size_text(image)}, x{scale:g}, seed {seed})"
    if scores:
        line += (f"; vs {reference.name}: PSNR {scores['psnr']:.2f} dB, SSIM {scores['ssim']:.4f} "
                 f"(bicubic: {scores['bicubic_psnr']:.2f} dB, {scores['bicubic_ssim']:.4f})")
    typer.echo(line)


def animate_cmd(
    run: Path = typer.Argument(..., help=RUN_HELP),
    out: Path = typer.Option(Path("anim.gif"), "--out", help="Output .gif or .mp4."),
    frames: int = typer.Option(60, "--frames", help="Number of frames."),
    alpha: float = typer.Option(0.1, "--alpha", help="Pull towards the picture's own noise (0..1): higher, closer."),
    beta: float = typer.Option(0.9, "--beta", help="Momentum of the walk (0..1): higher, smoother."),
    start_scale: Optional[int] = typer.Option(None, "--start-scale", help="Lower scales keep the layout (default 2)."),
    fps: int = typer.Option(10, "--fps"),
    seed: int = typer.Option(0, "--seed", help=SEED_HELP),
) -> None:
    """A short video of the picture in motion: a random walk in the noise of every scale (SinGAN §4)."""
    from gankit.api import load
    from gankit.explore.singan import animate, last_scale, pyramid_of
    from gankit.viz import make_grid, save_animation

    if out.suffix.lower() not in (".gif", ".mp4"):
        raise GankitError(f"--out must end in .gif or .mp4, got {out.name}")
    if fps < 1:
        raise GankitError(f"--fps must be >= 1, got {fps}")
    if out.suffix.lower() == ".gif" and fps > GIF_MAX_FPS:  # a GIF's frame delay is in 1/100 s, players floor it at 2
        raise GankitError(f"a GIF plays at most {GIF_MAX_FPS} fps, got --fps {fps}: lower it or write an .mp4")
    model = load(run)
    k = min(2, last_scale(pyramid_of(model))) if start_scale is None else start_scale
    video = animate(model, frames=frames, alpha=alpha, beta=beta, start_scale=k, seed=seed)
    save_animation([make_grid(f, nrow=1, padding=0) for f in video], out, fps=fps)
    typer.echo(f"wrote {out} ({frames} frames of {_size_text(video)}, start scale {k}, alpha {alpha:g}, "
               f"beta {beta:g}, {fps} fps)")
