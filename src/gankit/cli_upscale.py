"""``gankit upscale``: super-resolution with a trained srgan run (any size, in tiles; a file or a
folder) or a singan run trained on the low-resolution picture (SinGAN §4). Registered in
:mod:`gankit.cli`; thin: parse, call :mod:`gankit.explore.upscale` / :mod:`gankit.explore.singan`,
write, print."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from gankit.cli_outputs import refuse_writing_over_inputs, unique_stems
from gankit.cli_styles import png_out
from gankit.errors import GankitError


def upscale_cmd(
    run: Path = typer.Argument(..., help="An srgan run, or a singan run trained on the low-resolution picture "
                                         "(best: --preset sr)."),
    input_: Optional[Path] = typer.Option(None, "--input", help="Image file or folder (srgan); singan: default the training picture."),
    out: Path = typer.Option(..., "--out", help="Output PNG (one input) or folder (a folder of inputs)."),
    scale: Optional[float] = typer.Option(None, "--scale", help="Upscaling factor: srgan, the model's own (x4); singan, any >= 1 (default 4)."),
    tile: Optional[int] = typer.Option(None, "--tile", help="srgan: input tile size in pixels (default 256; memory stays bounded)."),
    reference: Optional[Path] = typer.Option(None, "--reference", help="The high-resolution original of one input: PSNR, SSIM (and bicubic's)."),
    seed: Optional[int] = typer.Option(None, "--seed", help="singan: seed of the noise (default 0)."),
) -> None:
    """Upscale pictures: SRGAN's generator (tiled, any size) or SinGAN's finest generator."""
    from gankit.api import load

    model = load(run)
    if model.family == "singan":
        from gankit.cli_singan import singan_upscale

        if tile is not None:  # was silently ignored
            raise GankitError("--tile is for srgan runs; singan upscales the whole picture at once")
        return singan_upscale(model, input_, 4.0 if scale is None else scale, out, reference, seed or 0)
    if model.family != "srgan":
        raise GankitError(f"{run} is a {model.family} model; upscale needs an srgan or singan run")
    if seed is not None:
        raise GankitError("--seed is for singan runs; srgan's upscaling draws no noise")
    tile = 256 if tile is None else tile
    if scale is not None and scale != model.config.scale:
        raise GankitError(f"this srgan model upscales x{model.config.scale} only, not x{scale:g}; drop --scale")
    if input_ is None:
        raise GankitError("give the picture(s) to upscale: --input IMAGE_OR_FOLDER")
    _srgan_upscale(model, input_, out, tile, reference)


def _srgan_upscale(model, input_: Path, out: Path, tile: int, reference: Optional[Path]) -> None:
    from gankit.data import images
    from gankit.engine.monitor import ProgressBar
    from gankit.explore.upscale import tile_count, upscale
    from gankit.viz import make_grid, save_image

    if not input_.exists():
        raise GankitError(f"input not found: {input_}")
    refuse_writing_over_inputs(input_, out)
    single = input_.is_file() and input_.suffix.lower() in images.IMAGE_EXTENSIONS
    if reference is not None and not single:
        raise GankitError("--reference scores one picture: give --input as a single image file")
    if single:
        png_out(out)
    ref = None if reference is None else _read_reference(reference, model.config.channels)  # before any write
    scale = model.config.scale
    src = images.open_source(input_.parent if single else input_)
    if single:
        src.entries = [e for e in src.entries if e.name == input_.name]
    stems = dict(zip((e.name for e in src.entries), unique_stems([e.name for e in src.entries])))
    skipped: list[tuple[str, str]] = []
    written = []
    try:
        decoded = images.iter_decoded(src, skipped, channels=model.config.channels)
        bar = ProgressBar(len(src.entries), 0, description="upscale", enabled=not single)
        for i, (entry, array) in enumerate(decoded):
            x = images.image_batch(array)
            image = upscale(model, x, tile=tile)
            if ref is not None and ref.shape[-2:] != image.shape[-2:]:
                raise GankitError(f"--reference is {ref.shape[-1]}x{ref.shape[-2]}, but x{scale} of the input is "
                                  f"{image.shape[-1]}x{image.shape[-2]} (nothing written)")
            target = out if single else out / (stems[entry.name] + ".png")
            save_image(make_grid(image, nrow=1, padding=0), target)
            written.append((target, x, image))
            bar.update(i + 1, {"tiles": float(tile_count(tuple(x.shape[-2:]), tile))})
        bar.close()
    finally:
        src.close()
    if not written:
        raise GankitError(f"{input_}: no readable image" + (f" ({skipped[0][0]}: {skipped[0][1]})" if skipped else ""))
    target, low, image = written[-1]
    line = (f"wrote {target} ({low.shape[-1]}x{low.shape[-2]} -> {image.shape[-1]}x{image.shape[-2]}, x{scale})" if single
            else f"wrote {len(written)} upscaled images (x{scale}) to {out}")
    if ref is not None:
        line += "; " + _reference_line(reference, ref, low, image, scale)
    typer.echo(line)
    if skipped:
        typer.echo(f"skipped {len(skipped)} unreadable file(s): " + ", ".join(n for n, _ in skipped[:3])
                   + (" ..." if len(skipped) > 3 else ""))


def _read_reference(reference: Path, channels: int):
    from gankit.explore.singan import as_image

    return as_image(reference, channels, "reference")


def _reference_line(reference: Path, ref, low, image, scale: int) -> str:
    from gankit.families.srgan import bicubic_up
    from gankit.metrics.super_resolution import sr_scores

    ours = sr_scores(image, ref, scale)
    base = sr_scores(bicubic_up(low.float().div(127.5).sub(1), ref.shape[-2:]), ref, scale)
    return (f"vs {reference.name} (Y, border {scale}): PSNR {ours['psnr']:.2f} dB, SSIM {ours['ssim']:.4f}, "
            f"sharpness {ours['sharpness']:.2f} (bicubic: {base['psnr']:.2f} dB, {base['ssim']:.4f}, "
            f"{base['sharpness']:.2f})")
