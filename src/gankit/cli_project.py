"""``gankit project``: find the latent of a real photo (registered in :mod:`gankit.cli`). Thin:
read the photo, call :func:`gankit.explore.project.project`, write the files."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Optional

import typer

from gankit.errors import GankitError
from gankit.files import write_text_atomic

MIN_FRAME = 256  # reconstruction.png and the movie's frames: scaled up (nearest) to at least this height


def read_photo(path: Path, channels: int, resolution: int):
    """The photo as uint8 (1, C, R, R): short side scaled to R, centre square kept."""
    from gankit.data.images import BadImage, _pil_limits, decode_image, image_batch

    if path.is_dir():
        raise GankitError(f"--image {path} is a folder; give one photo")
    if not path.is_file():
        raise GankitError(f"--image: no such file {path}")
    try:
        with _pil_limits():  # the data loader's pixel limit: no PIL "decompression bomb" warning wall
            a = decode_image(path.read_bytes(), channels, resolution)
    except BadImage as exc:
        raise GankitError(f"--image {path}: {exc}") from None
    return image_batch(a)


def _pair(target, image, scale: int = 1):
    """target | image as an H x W x 3 uint8 picture, scaled up by ``scale`` (nearest)."""
    import torch

    from gankit.viz import make_grid

    both = torch.cat([target, image])
    if scale > 1:
        both = torch.nn.functional.interpolate(both, scale_factor=scale, mode="nearest")
    return make_grid(both, nrow=2)


def project_cmd(
    run: Path = typer.Argument(..., help="Run directory or exported model directory (stylegan2)."),
    image: Path = typer.Option(..., "--image", help="Photo to project; scaled and centre-cropped to the model's resolution. Align faces first, as the training faces were (gankit prepare faces)."),
    out: Path = typer.Option(..., "--out", help="Output directory."),
    space: str = typer.Option("w", "--space", help="w (one w for every layer) | w+ (one w per layer: closer, less editable)."),
    steps: int = typer.Option(1000, "--steps", help="Optimisation steps."),
    loss: str = typer.Option("auto", "--loss", help="auto (lpips with --lpips-weights, else msssim) | terms of mse, l1, msssim, dfeat (the run's discriminator), face, lpips joined by '+', e.g. l1+0.5*msssim."),
    lpips_weights: Optional[Path] = typer.Option(None, "--lpips-weights", help="torchvision's VGG16 weights on disk for LPIPS, vgg16-397923af.pth (never downloaded; TorchScript files such as stylegan2-ada's vgg16.pt are refused: they run code)."),
    lr: float = typer.Option(0.1, "--lr", help="Initial learning rate (Adam)."),
    seed: int = typer.Option(0, "--seed"),
    optimize_noise: bool = typer.Option(True, "--optimize-noise/--fixed-noise", help="Optimise the per-layer noise maps too."),
    video: str = typer.Option("mp4", "--video", help="mp4 | gif: the optimisation movie."),
    frame_every: int = typer.Option(10, "--frame-every", help="A movie frame every N steps."),
    no_ema: bool = typer.Option(False, "--no-ema", help="Use the raw generator instead of its moving average."),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="No progress bar."),
) -> None:
    """Project a photo into W or W+ (StyleGAN2 §5): writes latent.safetensors, reconstruction.png,
    the optimisation movie and projection.json to --out."""
    from gankit.api import load
    from gankit.engine import checkpoint as ckpt
    from gankit.engine.monitor import ProgressBar
    from gankit.explore.project import SPACES, project
    from gankit.explore.project_losses import parse_loss
    from gankit.viz import make_grid, save_animation, save_image

    space = space.lower()
    if space not in SPACES:
        raise GankitError(f"--space must be w or w+, got {space!r}")
    if video not in ("mp4", "gif"):
        raise GankitError(f"--video must be mp4 or gif, got {video!r}")
    if loss != "auto":
        parse_loss(loss)
    if steps < 1 or frame_every < 1:
        raise GankitError("--steps and --frame-every must be >= 1")
    if image.is_dir():
        raise GankitError(f"--image {image} is a folder; give one photo")
    if not image.is_file():
        raise GankitError(f"--image: no such file {image}")
    if lpips_weights is not None and not lpips_weights.is_file():
        raise GankitError(f"--lpips-weights: no such file {lpips_weights}")
    model = load(run, ema=not no_ema)
    if not model.family_cls.style_based:
        raise GankitError(f"projection needs a style-based family (stylegan2); {model.family} has no W space")
    target = read_photo(image, model.config.channels, model.config.resolution)
    try:  # before the optimisation, not after its minutes
        out.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise GankitError(f"--out {out}: cannot create it ({exc.strerror or exc})") from None
    bar = ProgressBar(steps, 0, enabled=not quiet, description="projecting")
    try:
        result = project(model, target, space=space, steps=steps, loss=loss, lr=lr, seed=seed,
                         lpips_weights=lpips_weights, optimize_noise=optimize_noise, frame_every=frame_every,
                         on_step=lambda step, info: bar.update(step, info))
    finally:
        bar.close()

    tensors = {"w": result.w.contiguous(), **{f"noise.{k}": v[0].contiguous() for k, v in result.noise.items()}}
    ckpt.save_tensors_atomic(tensors, out / "latent.safetensors", metadata={
        "format": "gankit-projection", "space": space, "steps": str(steps), "loss": result.loss,
        "model": str(run)})
    scale = max(1, -(-MIN_FRAME // model.config.resolution))
    save_image(_pair(result.target, result.image, scale), out / "reconstruction.png")
    save_image(make_grid(result.image, padding=0), out / "projected.png")
    frames = [_pair(result.target, img, scale) for _, img in result.frames]
    movie = out / f"optimisation.{video}"
    try:
        save_animation(frames, movie, fps=10, hold_last=10)
    except GankitError:
        if video != "mp4":
            raise
        movie = save_animation(frames, out / "optimisation.gif", fps=10, hold_last=10)  # no ffmpeg
    doc = {"model": str(run), "image": str(image), "space": space, "steps": steps, "loss": result.loss,
           "lr": lr, "seed": seed, "optimize_noise": optimize_noise, "losses": result.losses,
           **{k: result.metrics[k] for k in ("psnr", "ssim", "l1", "mse")}, "seconds": round(result.seconds, 2),
           "files": ["latent.safetensors", "reconstruction.png", "projected.png", movie.name]}
    write_text_atomic(out / "projection.json", json.dumps(doc, indent=2))
    typer.echo(f"wrote {out}/: {space.upper()} latent after {steps} steps ({result.loss}): "
               f"PSNR {result.metrics['psnr']:.2f} dB, SSIM {result.metrics['ssim']:.3f} in {result.seconds:.1f}s")
