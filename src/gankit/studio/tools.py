"""What the studio's controls do, without gradio: each tool takes a :class:`Loaded` model and
plain values (seeds, sliders, an uploaded file's path) and returns a :class:`Result` (a picture
as uint8 (H, W, 3), files to download, a line of text). The gradio page (:mod:`.app`) only wires
widgets to these functions, so they are tested directly and reused by the load benchmark.

Every tool is a thin call into :mod:`gankit.explore` or :class:`gankit.Model`, the same code the
CLI runs; a model is loaded once (:class:`Loaded`) and its work is serialised by a lock, so
concurrent requests share one copy of the weights.
"""

from __future__ import annotations

import math
import tempfile
import threading
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from gankit.data import to_signed
from gankit.data.images import image_batch
from gankit.errors import GankitError

MAX_SAMPLES = 64
MAX_FRAMES = 240
VIDEO_SIDE = 256  # the walk's video is enlarged to about this (its GIF keeps the model's size)
EDIT_DIRECTIONS = 6  # SeFa directions always offered as sliders, beside the run's own
MAX_EDIT_SLIDERS = 12  # the Edit tab's room


@dataclass
class Result:
    image: np.ndarray | None = None  # (H, W, 3) uint8
    files: list[Path] = field(default_factory=list)  # PNG first, then e.g. the latent (.safetensors)
    text: str = ""
    video: Path | None = None


@dataclass
class Loaded:
    """One model the studio serves: loaded once, used under its lock."""

    name: str
    path: Path
    model: object  # gankit.Model
    lock: threading.Lock = field(default_factory=threading.Lock)
    _directions: dict | None = None

    @property
    def family(self):
        return self.model.family_cls

    def capabilities(self) -> list[str]:
        """The tabs this model gets (the page's order is fixed in :mod:`.app`)."""
        f, caps = self.family, []
        if getattr(f, "apply_command", None) == "translate":
            caps.append("translate")
        elif getattr(f, "apply_command", None) == "upscale" or f.single_image:
            caps.append("upscale")
        if not f.translates:
            caps += ["sample"] if f.single_image else ["sample", "walk"]
        if not f.translates and not f.single_image and not f.takes_text and self.model.config.channels:
            caps.append("arithmetic")  # not for 2-D points
        if f.style_based:
            caps += ["mix", "edit", "project"]
        if f.single_image:
            caps += ["harmonize", "paint"]
        return caps

    def directions(self):
        """Edit directions: the run's own (``RUN/directions/*.safetensors``: supervised, SeFa,
        GANSpace) and, always, the first SeFa directions (closed form, computed once)."""
        if self._directions is None:
            from gankit.explore.directions import direction_scale, load_directions, sample_ws, sefa

            found: dict[str, tuple] = {}
            folder = self.path / "directions"
            for file in sorted(folder.glob("*.safetensors")) if folder.is_dir() else []:
                try:
                    d = load_directions(file)
                except GankitError:
                    continue
                if d.vectors.shape[1] == self.model.generator.w_dim:
                    found.update({name: (d.vectors[i], float(d.scales[i]), d.layers) for i, name in enumerate(d.names)})
            with torch.no_grad():
                vectors, _ = sefa(self.model.generator, k=EDIT_DIRECTIONS)
                scales = direction_scale(sample_ws(self.model, 1000, seed=0), vectors)
            for i in range(len(vectors)):
                found.setdefault(f"sefa:{i}", (vectors[i], float(scales[i]), None))
            self._directions = found
        return self._directions

    def slider_directions(self, limit: int = MAX_EDIT_SLIDERS) -> list[str]:
        """The Edit tab's sliders: the run's own directions, as many as fit beside the first
        ``EDIT_DIRECTIONS`` SeFa ones, which always show (the page has room for ``limit``)."""
        names = list(self.directions())
        sefa_first = [f"sefa:{i}" for i in range(EDIT_DIRECTIONS) if f"sefa:{i}" in names]
        return [n for n in names if n not in sefa_first][:max(limit - len(sefa_first), 0)] + sefa_first


def load_models(paths: list[str | Path], *, device: str = "cpu") -> dict[str, Loaded]:
    """Each run or exported model, loaded once; names are the folders' names (made unique)."""
    from gankit.api import load

    if not paths:
        raise GankitError("give at least one run directory or exported model to serve")
    loaded: dict[str, Loaded] = {}
    for p in paths:
        path = Path(p)
        name = path.resolve().name or str(path)
        while name in loaded:
            name += "'"
        loaded[name] = Loaded(name, path, load(path, device=device))
    return loaded


# ---- outputs --------------------------------------------------------------------------------------
def _picture(images: torch.Tensor, nrow: int | None = None) -> np.ndarray:
    """A grid of images (one image: the image itself, no border) as (H, W, 3) uint8."""
    from gankit.viz import render_samples

    return render_samples(images.float().cpu(), nrow=nrow, padding=0 if len(images) == 1 else 2)


def enlarged(image: np.ndarray | None, side: int) -> np.ndarray | None:
    """``image`` repeated (nearest neighbour) by the whole factor that brings its longer side near
    ``side``; larger pictures unchanged. For showing small models' pictures, never for saving them."""
    if image is None:
        return None
    k = max(1, side // max(image.shape[:2]))
    return image.repeat(k, axis=0).repeat(k, axis=1) if k > 1 else image


def _outputs(picture: np.ndarray, stem: str, *, latent: dict[str, torch.Tensor] | None = None,
             folder: Path | None = None) -> list[Path]:
    """The PNG (and the latent as safetensors) in a fresh folder the page offers for download."""
    from safetensors.torch import save_file

    from gankit.viz import save_image

    out = Path(tempfile.mkdtemp(prefix="gankit-studio-", dir=folder))
    files = [out / f"{stem}.png"]
    save_image(picture, files[0])
    if latent:
        files.append(out / f"{stem}-latent.safetensors")
        save_file({k: v.detach().float().cpu().contiguous() for k, v in latent.items()}, str(files[1]))
    return files


def _finite(value: float, what: str) -> float:
    value = float(value)
    if not math.isfinite(value):
        raise GankitError(f"{what} must be a finite number, got {value}")
    return value


def _seed(value, what: str = "seed") -> int:
    """A seed from a number box: a whole number >= 0 (an empty box is a message, not a crash)."""
    try:
        seed = int(value)
    except (TypeError, ValueError):
        raise GankitError(f"{what} must be a whole number >= 0, got {value!r}") from None
    if seed < 0 or seed != value:
        raise GankitError(f"{what} must be a whole number >= 0, got {value!r}")
    return seed


def _count(n: float, what: str, high: int) -> int:
    try:
        n = int(n)
    except (TypeError, ValueError):
        raise GankitError(f"{what} must be a whole number, got {n!r}") from None
    if not 1 <= n <= high:
        raise GankitError(f"{what} must be between 1 and {high}, got {n}")
    return n


# ---- noise to image ---------------------------------------------------------------------------------
def condition(m: Loaded, label: str | int | None, caption: str | None, n: int):
    """The ``cond`` of :meth:`Model.sample`: a class index (conditional), captions (stackgan), or None."""
    f, c = m.family, m.model.config
    if f.takes_text:
        text = (caption or "").strip()
        if not text:
            example = c.sample_captions[0] if c.sample_captions else "a red seven"
            raise GankitError(f"write a caption first, e.g. {example}")
        return [text] * n
    if not m.model.num_classes or label in (None, "", "random"):
        return None
    names = class_names(m)
    index = names.index(label) if label in names else int(label)
    if not 0 <= index < m.model.num_classes:
        raise GankitError(f"class must be 0..{m.model.num_classes - 1}, got {index}")
    return index


def two_way(m: Loaded) -> bool:
    """CycleGAN and DiscoGAN translate both ways; the others the trained way only."""
    from gankit.families.cyclegan import CycleFamily

    return issubclass(m.family, CycleFamily)


def attribute_names(m: Loaded) -> list[str]:
    """StarGAN's attributes (or domains), the studio's toggles."""
    return list(getattr(m.model.config, "names", None) or [])


def class_names(m: Loaded) -> list[str]:
    names = getattr(m.model.config, "class_names", None) or []
    return list(names) if len(names) == m.model.num_classes else [str(i) for i in range(m.model.num_classes)]


def truncation_of(m: Loaded, value: float | None) -> float | None:
    """The slider's value as the model's truncation: psi in W (style-based; 1 = off) or the
    z bound t > 0 (others; the slider's 0 = off)."""
    if value is None:
        return None
    value = _finite(value, "truncation")
    if m.family.truncation_space == "w":
        return value
    return value if value > 0 else None


def draw_latents(m: Loaded, n: int, seed: int, truncation: float | None) -> tuple[torch.Tensor, float | None]:
    """``n`` latents for ``seed`` and what :meth:`Model.generate` takes as truncation: psi in W for
    the style-based families (applied when generating); for the others the z bound, applied
    here as z is drawn (a given z cannot be truncated)."""
    psi = truncation_of(m, truncation)
    if m.family.truncation_space == "w":
        return m.model.latents(n, seed=seed), psi
    return m.model.latents(n, seed=seed, truncation=psi), None


def sample(m: Loaded, *, seed: int = 0, n: int = 8, truncation: float | None = None, label=None,
           caption: str | None = None, folder: Path | None = None) -> Result:
    """A grid of ``n`` samples; the latents go with the PNG (key ``z``, and ``w`` for style-based)."""
    from gankit.explore.singan import sample as singan_sample

    n = _count(n, "samples", MAX_SAMPLES)
    seed = _seed(seed)
    psi = None
    with m.lock:
        if m.family.single_image:
            images, latent = singan_sample(m.model, n, seed=seed), None
        else:
            z, psi_w = draw_latents(m, n, seed, truncation)
            cond = condition(m, label, caption, n)
            psi = truncation_of(m, truncation)
            images = m.model.generate(z, cond, seed=seed, truncation=psi_w)
            latent = {"z": z}
            if m.family.style_based:
                latent["w"] = m.model.mapping(z, truncation=1.0 if psi is None else psi).detach()
    picture = _picture(images)
    return Result(picture, _outputs(picture, f"{m.name}-seed{seed}", latent=latent, folder=folder),
                  f"{n} samples, seed {seed}" + (f", truncation {psi:g}" if psi is not None else ""))


def walk(m: Loaded, *, seed: int = 0, keyframes: int = 4, frames: int = 48, fps: int = 12,
         truncation: float | None = None, label=None, caption: str | None = None,
         folder: Path | None = None) -> Result:
    """A looping latent walk (slerp through ``keyframes`` random latents) as an MP4 (H.264, enlarged
    for the page) and a GIF at the model's size."""
    from gankit.explore.latent import latent_walk
    from gankit.viz.animation import save_animation

    if m.family.single_image:
        raise GankitError("singan samples have no latent to walk; use the singan tab's animation")
    keyframes, frames = _count(keyframes, "keyframes", 16), _count(frames, "frames", MAX_FRAMES)
    if keyframes < 2:
        raise GankitError("a walk needs at least 2 keyframes")
    with m.lock:
        keys, psi_w = draw_latents(m, keyframes, _seed(seed), truncation)
        path = latent_walk(keys[:, None], frames)[:, 0]
        cond = condition(m, label, caption, 1)
        cond = cond * frames if isinstance(cond, list) else cond
        images = torch.cat([m.model.generate(path[i:i + 16], cond[i:i + 16] if isinstance(cond, list) else cond,
                                             seed=_seed(seed), truncation=psi_w)
                            for i in range(0, frames, 16)])
    shots = [_picture(x[None]) for x in images]
    out = Path(tempfile.mkdtemp(prefix="gankit-studio-", dir=folder))
    stem = f"{m.name}-walk-seed{_seed(seed)}"
    video = save_animation([enlarged(x, VIDEO_SIDE) for x in shots], out / f"{stem}.mp4", fps=int(fps))
    gif = save_animation(shots, out / f"{stem}.gif", fps=int(fps))
    return Result(shots[0], [gif, video], f"{frames} frames through {keyframes} keyframes", video=video)


# ---- style-based ----------------------------------------------------------------------------------
def mix(m: Loaded, *, row_seed: int = 0, col_seed: int = 1, first: int = 0, last: int = 3,
        truncation: float = 1.0, folder: Path | None = None) -> Result:
    """Style mixing (StyleGAN Fig. 3): the row seed's w with the column seed's w on layers first..last."""
    from gankit.explore.styles import seed_latents

    num = m.model.num_ws
    first, last = int(first), int(last)
    if not 0 <= first <= last < num:
        raise GankitError(f"layers must satisfy 0 <= first <= last <= {num - 1}, got {first}-{last}")
    psi = _finite(truncation, "truncation")
    with m.lock, torch.no_grad():
        ws = m.model.mapping(seed_latents(m.model, [_seed(row_seed), _seed(col_seed)]), truncation=psi)
        mixed = ws[:1].clone()
        mixed[:, first:last + 1] = ws[1:, first:last + 1]
        images = m.model.synthesis(torch.cat([ws, mixed])).clamp(-1, 1)
    picture = _picture(images, nrow=3)
    return Result(picture, _outputs(picture, f"{m.name}-mix{_seed(row_seed)}-{_seed(col_seed)}",
                                    latent={"w": mixed}, folder=folder),
                  f"row seed {_seed(row_seed)} | column seed {_seed(col_seed)} | mixed on layers {first}-{last} "
                  f"of 0-{num - 1}")


def edit(m: Loaded, strengths: dict[str, float], *, seed: int = 0, truncation: float = 1.0,
         w: torch.Tensor | None = None, folder: Path | None = None) -> Result:
    """The seed's w (or a given ``w``, e.g. a projected photo's ws) moved along each named direction
    by its strength (stds of w along it): the original and the edit side by side."""
    from gankit.explore.edit import apply_direction
    from gankit.explore.styles import seed_latents

    known = m.directions()
    unknown = [k for k in strengths if k not in known]
    if unknown:
        raise GankitError(f"unknown direction {unknown[0]!r}; this model has {', '.join(known)}")
    who = "your photo" if w is not None else f"seed {_seed(seed)}"
    with m.lock, torch.no_grad():
        if w is None:
            w = m.model.mapping(seed_latents(m.model, [_seed(seed)]), truncation=_finite(truncation, "truncation"))
        edited = w.clone()
        for name, s in strengths.items():
            if _finite(s, name):
                vector, scale, layers = known[name]
                edited = apply_direction(edited, vector, s, scale=scale, layers=layers)
        images = m.model.synthesis(torch.cat([w, edited])).clamp(-1, 1)
    picture = _picture(images, nrow=2)
    moved = ", ".join(f"{k} {v:+g}" for k, v in strengths.items() if v) or "nothing moved"
    return Result(picture, _outputs(picture, f"{m.name}-edit", latent={"w": edited}, folder=folder), f"{who}: {moved}")


def seeds_of(text: str, what: str) -> list[int]:
    from gankit.explore.styles import parse_seeds

    try:
        seeds = parse_seeds(str(text))
    except (GankitError, ValueError):
        raise GankitError(f"{what}: give seeds such as 1,2,5-8, got {text!r}") from None
    if not seeds:
        raise GankitError(f"{what}: give at least one seed")
    return seeds


def arithmetic(m: Loaded, a: str, b: str, c: str, *, label=None, variations: int = 3,
               folder: Path | None = None) -> Result:
    """Vector arithmetic (DCGAN §6.3.2, Fig. 7): mean(A) - mean(B) + mean(C) of exemplar seeds,
    in z (or W for style-based), with ``variations`` noisy copies; the figure of Fig. 7."""
    from gankit.explore.arithmetic import latent_arithmetic

    terms = [(1, seeds_of(a, "A")), (-1, seeds_of(b, "B")), (1, seeds_of(c, "C"))]
    cond = condition(m, label, None, 1) if m.model.num_classes else None
    if m.model.num_classes and cond is None:
        raise GankitError("this model is class-conditional: choose the class to hold fixed")
    with m.lock:
        out = latent_arithmetic(m.model, terms, variations=_count(variations, "variations", 8), cond=cond)
    images, nrow = out.figure()
    picture = _picture(images, nrow=nrow)
    return Result(picture, _outputs(picture, f"{m.name}-arithmetic", latent={"result": out.result}, folder=folder),
                  f"A ({a}) - B ({b}) + C ({c}) = the last column of the bottom row")


def project(m: Loaded, upload: str | Path | None, *, steps: int = 200, space: str = "w+",
            folder: Path | None = None) -> tuple[Result, torch.Tensor]:
    """Project an uploaded photo into the model (Karras et al. 2020, §5): ``(target |
    reconstruction, its ws (1, num_ws, w_dim))``; the ws then go to :func:`edit` and :func:`toonify`."""
    from gankit.explore.project import project as run_projection
    from gankit.studio.uploads import read_upload

    c = m.model.config
    image = read_upload(upload, channels=c.channels, resolution=c.resolution, what="photo to project")
    with m.lock:
        found = run_projection(m.model, image_batch(image)[0], space=space,
                               steps=_count(steps, "steps", 2000), frame_every=0)
    ws = found.ws.detach().cpu()
    picture = _picture(torch.cat([found.target.cpu(), found.image.cpu()]), nrow=2)
    scores = ", ".join(f"{k} {v:.3g}" for k, v in found.metrics.items())
    return Result(picture, _outputs(picture, f"{m.name}-projected", latent={"w": ws}, folder=folder),
                  f"projected in {found.steps} steps ({found.seconds:.0f} s): {scores}"), ws


def toonify(base: Loaded, tuned: Loaded, *, swap: int, seed: int = 0, w: torch.Tensor | None = None,
            truncation: float = 0.7, folder: Path | None = None) -> Result:
    """Layer swapping (Pinkney & Adler 2020): ``base``'s coarse blocks with ``tuned``'s from
    ``swap`` px up. The seed's (or the projected photo's) ws through base, tuned and the blend."""
    from gankit.explore.blend import blend_models, blend_rows
    from gankit.explore.styles import seed_latents

    with base.lock, tuned.lock:
        blended = blend_models(base.model, tuned.model, int(swap))
        with torch.no_grad():
            if w is None:
                psi = _finite(truncation, "truncation")
                w = base.model.mapping(seed_latents(base.model, [_seed(seed)]), truncation=psi)
            images = blend_rows([base.model, tuned.model, blended], w)
    picture = _picture(images, nrow=3)
    return Result(picture, _outputs(picture, f"{base.name}-{tuned.name}-swap{int(swap)}", folder=folder),
                  f"{base.name} | {tuned.name} | blend: {base.name} below {int(swap)} px, "
                  f"{tuned.name} from {int(swap)} px")


def harmonize(m: Loaded, pasted: str | Path | None, mask: str | Path | None, *, start_scale: int,
              mode: str = "harmonization", seed: int = 0, folder: Path | None = None) -> Result:
    """SinGAN harmonisation / editing (§4) of an uploaded picture and its mask."""
    from gankit.explore.singan import harmonize as run_harmonize
    from gankit.studio.uploads import read_upload

    channels = m.model.config.channels
    image = image_batch(read_upload(pasted, channels=channels, what="pasted picture"))
    region = image_batch(read_upload(mask, channels=1, what="mask"))
    with m.lock:
        out = run_harmonize(m.model, image, region, start_scale=int(start_scale), mode=mode, seed=_seed(seed))
    before = torch.nn.functional.interpolate(to_signed(image), size=out["output"].shape[-2:], mode="area")
    picture = _picture(torch.cat([before, out["output"]]), nrow=2)
    return Result(picture, _outputs(picture, f"{m.name}-{mode}", folder=folder),
                  f"{mode} injected at scale {int(start_scale)}, seed {_seed(seed)}")


def paint(m: Loaded, clipart: str | Path | None, *, start_scale: int, seed: int = 0,
          folder: Path | None = None) -> Result:
    """SinGAN paint-to-image (§4): an uploaded painting in the training picture's textures."""
    from gankit.explore.singan import paint as run_paint
    from gankit.studio.uploads import read_upload

    image = image_batch(read_upload(clipart, channels=m.model.config.channels, what="painting"))
    with m.lock:
        out = run_paint(m.model, image, start_scale=int(start_scale), seed=_seed(seed))
    picture = _picture(out)
    return Result(picture, _outputs(picture, f"{m.name}-painted", folder=folder),
                  f"painting injected at scale {int(start_scale)}, seed {_seed(seed)}")


# ---- pictures in ----------------------------------------------------------------------------------
def translate(m: Loaded, upload: str | Path | None, *, direction: str | None = None,
              attrs: dict[str, float] | None = None, folder: Path | None = None) -> Result:
    """An uploaded photo through an image-to-image model: the input, then each output column
    (StarGAN: each attribute flipped, or the toggles given in ``attrs``)."""
    from gankit.families.translation import to_rgb
    from gankit.data import to_signed
    from gankit.studio.uploads import read_upload

    c = m.model.config
    image = read_upload(upload, channels=m.family.input_channels(c, direction or None), resolution=c.resolution)
    x = image_batch(image)
    with m.lock, torch.no_grad():
        columns = m.family.translation_columns(m.model, x, direction=direction or None, attrs=attrs or None)
    tiles = torch.cat([to_rgb(to_signed(x))] + [to_rgb(col) for _, col in columns])
    picture = _picture(tiles, nrow=len(tiles))
    return Result(picture, _outputs(picture, f"{m.name}-translated", folder=folder),
                  "input | " + " | ".join(label for label, _ in columns))


def upscale(m: Loaded, upload: str | Path | None, *, scale: float = 4.0, seed: int = 0,
            folder: Path | None = None) -> Result:
    """SRGAN: the uploaded picture x4 (tiled, any size); SinGAN: its picture (or the upload) by ``scale``."""
    from gankit.studio.uploads import read_upload

    c = m.model.config
    image = read_upload(upload, channels=c.channels, what="picture to upscale")
    x = image_batch(image)
    with m.lock:
        if m.family.single_image:
            from gankit.explore.singan import upscale as singan_upscale

            out = singan_upscale(m.model, x, scale=_finite(scale, "scale"), seed=_seed(seed))
        else:
            from gankit.explore.upscale import upscale as sr_upscale

            out = sr_upscale(m.model, x)
    picture = _picture(out)
    return Result(picture, _outputs(picture, f"{m.name}-upscaled", folder=folder),
                  f"{image.shape[1]}x{image.shape[0]} -> {picture.shape[1]}x{picture.shape[0]}")


# ---- the run page ---------------------------------------------------------------------------------
def run_page(m: Loaded) -> str:
    """The run's report (curves, snapshot strip, scores) as self-contained HTML, or a line saying
    the model is an export without a training history."""
    from html import escape

    from gankit.viz.report import render_report

    if not (m.path / "metrics.jsonl").exists() and not (m.path / "samples").is_dir():
        return f"<p>{escape(m.name)} is an exported model ({m.family.name}); it has no training history.</p>"
    return render_report(m.path)
