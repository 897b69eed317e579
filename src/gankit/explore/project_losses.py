"""Distances between generated images and a target, for projection (:mod:`gankit.explore.project`).

A loss is a sum of weighted terms, written ``"mse+0.1*face"``; each term gives one value per image:

* ``mse`` / ``l1``: pixel errors in [-1, 1] units (mean over pixels and channels);
* ``msssim``: 1 - multi-scale SSIM (Wang et al. 2003) of torchmetrics on images in [0, 1], with as
  many of its five scales (and their weights, renormalised) as the resolution allows;
* ``dfeat``: the discriminator's features, compared the way LPIPS compares VGG features (Zhang et
  al. 2018, arXiv:1801.03924, Eq. 1) with all channel weights 1: each block's output unit-normalised
  over channels, squared differences summed over channels, averaged over positions and blocks.
  Needs the discriminator, which only a run directory's checkpoint holds (:func:`load_discriminator`);
* ``face``: 1 - cosine similarity of the shipped face CNN's 128-d embeddings
  (:mod:`gankit.metrics.face_classifier`);
* ``lpips``: LPIPS with VGG16 from weights on disk (:func:`load_lpips`); nothing is downloaded.
"""

from __future__ import annotations

import math
import zipfile
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from gankit.errors import GankitError

TERMS = ("mse", "l1", "msssim", "dfeat", "face", "lpips")
MSSSIM_BETAS = (0.0448, 0.2856, 0.3001, 0.2363, 0.1333)  # Wang et al. 2003, torchmetrics' defaults
VGG_TAPS = (3, 8, 15, 22, 29)  # relu1_2, relu2_2, relu3_3, relu4_3, relu5_3 of torchvision's vgg16.features
LPIPS_SHIFT = (-0.030, -0.088, -0.188)  # LPIPS's input scaling layer, for images in [-1, 1]
LPIPS_SCALE = (0.458, 0.448, 0.450)


def parse_loss(spec: str) -> list[tuple[float, str]]:
    """``"mse+0.1*face"`` -> ``[(1.0, "mse"), (0.1, "face")]``."""
    terms = []
    for part in filter(None, (p.strip() for p in spec.lower().split("+"))):
        weight, _, name = part.rpartition("*")
        try:
            w = float(weight) if weight else 1.0
        except ValueError:
            w = float("nan")
        if name not in TERMS or not math.isfinite(w) or w < 0:
            raise GankitError(f"--loss takes terms {', '.join(TERMS)} joined by '+', each optionally "
                              f"weighted as 0.5*term; got {spec!r}")
        terms.append((w, name))
    if not terms:
        raise GankitError(f"--loss: no terms in {spec!r}")
    return terms


def unit_channels(x: torch.Tensor, eps: float = 1e-10) -> torch.Tensor:
    """Each position's feature vector scaled to unit length (LPIPS's normalisation)."""
    return x / (x.square().sum(dim=1, keepdim=True).sqrt() + eps)


def feature_distance(a: list[torch.Tensor], b: list[torch.Tensor]) -> torch.Tensor:
    """Sum over layers of the per-position squared distance, averaged over positions: (N,)."""
    return sum((x - y).square().sum(dim=1).flatten(1).mean(dim=1) for x, y in zip(a, b))


# ---- the discriminator's features ----------------------------------------------------------------
def load_discriminator(path: str | Path) -> nn.Module | None:
    """The discriminator D of a run directory's newest checkpoint, or of an export directory that
    keeps one beside the generator (``extra.D.*``); frozen, eval mode. None when there is none."""
    from gankit.engine import checkpoint as ckpt
    from gankit.model import EXPORT_CONFIG, EXPORT_WEIGHTS, EXTRA_PREFIX, read_export_doc
    from gankit.registry import get_family

    path = Path(path)
    if (path / EXPORT_WEIGHTS).is_file() and (path / EXPORT_CONFIG).is_file():
        doc = read_export_doc(path / EXPORT_CONFIG)
        weights = ckpt.prefixed(ckpt.read_tensors(path / EXPORT_WEIGHTS), f"{EXTRA_PREFIX}D")
        family, values = doc["family"], doc["config"]
    elif ckpt.list_checkpoints(path):
        _, tensors, meta = ckpt.load_latest(path)
        weights, family, values = ckpt.prefixed(tensors, "net.D"), meta["family"], meta["config"]
    else:
        return None
    if not weights:
        return None
    family_cls = get_family(family)
    config = family_cls.Config.from_dict(values, strict=False)
    shape = (config.channels, config.resolution, config.resolution)
    D = family_cls.build_discriminators(config, shape)["D"]
    try:
        D.load_state_dict(weights)
    except RuntimeError:
        return None  # not this family's D: project without it
    return D.eval().requires_grad_(False)


def discriminator_features(D: nn.Module, x: torch.Tensor) -> list[torch.Tensor]:
    """Unit-normalised outputs of each residual block of StyleGAN2's D (before the 4x4 epilogue,
    so no minibatch statistics mix the images of a batch)."""
    feats, h = [], None
    for res in D.resolutions:
        h = getattr(D, f"b{res}")(h, x)
        feats.append(unit_channels(h))
    return feats


# ---- LPIPS from weights on disk --------------------------------------------------------------------
class VGGLPIPS(nn.Module):
    """LPIPS (VGG16, v0.1): torchvision's VGG16 trunk with the learned per-channel weights; returns
    per-layer features whose :func:`feature_distance` is the LPIPS distance."""

    def __init__(self, trunk: nn.Sequential, lin: list[torch.Tensor]):
        super().__init__()
        self.trunk = trunk[:VGG_TAPS[-1] + 1]
        self.lin = [w.reshape(1, -1, 1, 1).clamp(min=0).sqrt() for w in lin]
        self.register_buffer("shift", torch.tensor(LPIPS_SHIFT)[None, :, None, None])
        self.register_buffer("scale", torch.tensor(LPIPS_SCALE)[None, :, None, None])

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        x = (x.expand(-1, 3, -1, -1) - self.shift) / self.scale
        feats = []
        for i, layer in enumerate(self.trunk):
            x = layer(x)
            if i in VGG_TAPS:
                feats.append(unit_channels(x) * self.lin[len(feats)].to(x))
        return feats


def _lin_weights() -> list[torch.Tensor]:
    """LPIPS's learned VGG channel weights: the ``lpips`` package's file when installed, else the copy
    torchmetrics ships (the same 7 KB file, no network)."""
    candidates = []
    try:
        import lpips  # noqa: F401
        candidates.append(Path(lpips.__file__).parent / "weights" / "v0.1" / "vgg.pth")
    except ImportError:
        pass
    import torchmetrics.functional.image as tmi

    candidates.append(Path(tmi.__file__).parent / "lpips_models" / "vgg.pth")
    for path in candidates:
        if path.is_file():
            state = torch.load(path, map_location="cpu", weights_only=True)
            return [state[f"lin{i}.model.1.weight"].float() for i in range(len(VGG_TAPS))]
    raise GankitError("LPIPS's channel weights (vgg.pth) are not on disk: install lpips or torchmetrics")


def is_torchscript(path: Path) -> bool:
    """A TorchScript archive (``torch.jit.save``): a zip with the program's ``code/``."""
    try:
        with zipfile.ZipFile(path) as archive:
            return any("/code/" in f"/{name}" for name in archive.namelist())
    except (zipfile.BadZipFile, OSError):
        return False


def load_lpips(path: str | Path) -> nn.Module:
    """LPIPS from ``path``: a torchvision VGG16 state dict (``vgg16-397923af.pth``, what the
    ``lpips`` package loads), read as tensors only, combined with LPIPS's channel weights.
    stylegan2-ada's ``vgg16.pt`` is a TorchScript program: running it would run code stored in a
    user's file, so it is refused. One-line GankitError when the file is missing or unreadable."""
    path = Path(path)
    if not path.is_file():
        raise GankitError(f"--lpips-weights: no such file {path}")
    if is_torchscript(path):
        raise GankitError(f"{path} is a TorchScript program (stylegan2-ada's vgg16.pt runs code stored in the "
                          f"file, which gankit never does): give torchvision's VGG16 weights, vgg16-397923af.pth")
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
        import torchvision

        vgg = torchvision.models.vgg16()
        state = {k: v for k, v in state.items() if k.startswith("features.")}
        vgg.features.load_state_dict({k[len("features."):]: v for k, v in state.items()})
    except Exception as exc:  # noqa: BLE001 - pickle, zip and key errors alike
        raise GankitError(f"cannot read {path} as LPIPS weights ({type(exc).__name__}): expected "
                          f"stylegan2-ada's TorchScript vgg16.pt or a torchvision VGG16 state dict") from None
    return VGGLPIPS(vgg.features, _lin_weights()).eval().requires_grad_(False)


# ---- multi-scale SSIM ----------------------------------------------------------------------------
def msssim_setup(size: int) -> tuple[int, tuple[float, ...]]:
    """(kernel size, betas) for ``size``-pixel images: as many scales as torchmetrics allows with
    its 11x11 window (5 from 176 px; 3 at 64 px), at least 2 with a smaller window."""
    for n in range(5, 1, -1):
        if size >= 2 ** n and size // (n - 1) ** 2 > 10:
            break
    kernel = min(11, (size // max(1, n - 1) ** 2 - 1) | 1)
    betas = MSSSIM_BETAS[:n]
    return kernel, tuple(b / sum(betas) for b in betas)


def msssim_distance(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    from torchmetrics.functional.image import multiscale_structural_similarity_index_measure as msssim

    kernel, betas = msssim_setup(x.shape[-1])
    x, y = (x.clamp(-1, 1) + 1) / 2, (y + 1) / 2
    return 1 - msssim(x, y, kernel_size=kernel, betas=betas, data_range=1.0, reduction="none", normalize="relu")


# ---- the combined distance -----------------------------------------------------------------------
class Distance:
    """``distance(images) -> (total (N,), {term: (N,)})`` to the ``target`` images (N, C, H, W) in
    [-1, 1]; target features are computed once."""

    def __init__(self, spec: str, target: torch.Tensor, *, discriminator: nn.Module | None = None,
                 lpips: nn.Module | None = None):
        self.terms, self.target = parse_loss(spec), target
        names = {n for _, n in self.terms}
        if "dfeat" in names and discriminator is None:
            raise GankitError("the dfeat loss needs the discriminator, which only a run directory's "
                              "checkpoint holds (an exported model has none); pick another --loss")
        if "lpips" in names and lpips is None:
            raise GankitError("the lpips loss needs --lpips-weights PATH (VGG16 weights on disk)")
        self.D, self.lpips_net = discriminator, lpips
        self.face = None
        if "face" in names:
            from gankit.metrics.face_classifier import load_face_classifier

            self.face = load_face_classifier(target.device)
        with torch.no_grad():
            self.ref = {n: self._features(n, target) for n in names if n in ("dfeat", "face", "lpips")}

    def _features(self, name: str, x: torch.Tensor):
        if name == "dfeat":
            return discriminator_features(self.D.to(x.device), x)
        if name == "lpips":
            return self.lpips_net.to(x.device)(x)
        return F.normalize(self.face.features(x), dim=1)

    def term(self, name: str, x: torch.Tensor) -> torch.Tensor:
        y = self.target
        if name == "mse":
            return (x - y).square().flatten(1).mean(1)
        if name == "l1":
            return (x - y).abs().flatten(1).mean(1)
        if name == "msssim":
            return msssim_distance(x, y)
        if name == "face":
            return 1 - (self._features(name, x) * self.ref[name]).sum(1)
        dist = feature_distance(self._features(name, x), self.ref[name])
        return dist / len(self.ref[name]) if name == "dfeat" else dist

    def __call__(self, x: torch.Tensor) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        parts = {name: self.term(name, x) for _, name in self.terms}
        total = sum(w * parts[name] for w, name in self.terms)
        return total, parts
