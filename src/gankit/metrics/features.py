"""Feature extractors for FID / KID / IS / precision-recall.

Every extractor is an ``nn.Module`` that takes float images in [-1, 1], NCHW, any size, 1 or 3
channels, and returns ``(N, num_features)`` features; ``class_logits(x)`` gives classifier logits
(for the Inception Score). Three exist:

* ``mnist``: the small digit CNN shipped with gankit (:mod:`gankit.metrics.mnist_classifier`),
  for 1-channel digit-like data. No network needed.
* ``faces``: the small face CNN shipped with gankit (:mod:`gankit.metrics.face_classifier`,
  trained on 1,600 FairFace faces), its 128-d embedding; for face data. No network needed.
  FIDs in this space compare gankit runs with each other, never with published (Inception) FIDs.
* ``inception``: the standard FID Inception-v3 (the TF 2015-12-05 graph ported to PyTorch as in
  pytorch-fid, file ``pt_inception-2015-12-05-6726825d.pth``), pool3 features (2048). Loaded only
  from a local file: ``inception_weights=PATH`` or the torch hub cache. gankit never downloads.
"""

from __future__ import annotations

import json
import os
import zipfile
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from gankit.errors import GankitError

INCEPTION_FILES = ("pt_inception-2015-12-05-6726825d.pth", "weights-inception-2015-12-05-6726825d.pth")
INCEPTION_URL = "https://github.com/mseitzer/pytorch-fid/releases/download/fid_weights/pt_inception-2015-12-05-6726825d.pth"
FEATURE_CHOICES = ("auto", "inception", "mnist", "faces")


class FeatureExtractor(nn.Module):
    """Common interface: ``forward(x) -> (N, num_features)``; ``class_logits`` where a classifier exists."""

    name: str = ""
    num_features: int = 0
    has_logits: bool = False

    def class_logits(self, x: torch.Tensor) -> torch.Tensor:
        raise GankitError(f"the {self.name!r} features have no classifier, so the Inception Score is unavailable")


class MnistFeatures(FeatureExtractor):
    """Penultimate activations (128) of the shipped MNIST CNN; logits for IS."""

    name = "mnist"
    has_logits = True

    def __init__(self, device: str | torch.device = "cpu") -> None:
        super().__init__()
        from .mnist_classifier import FEATURE_DIM, load_mnist_classifier

        self.net = load_mnist_classifier(device)
        self.num_features = FEATURE_DIM

    def _check(self, x: torch.Tensor) -> torch.Tensor:
        if x.dim() != 4 or x.shape[1] != 1:
            raise GankitError(f"--features mnist needs 1-channel images, got {x.shape[1] if x.dim() == 4 else '?'} "
                              "channels; use --features inception (with weights) or the swd metric")
        return x

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net.features(self._check(x))

    def class_logits(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(self._check(x))


class FaceFeatures(FeatureExtractor):
    """The 128-d embedding of the shipped face CNN; for the Inception Score, the log-probabilities
    of the 126 joint (age group, gender, race) classes, the three heads taken as independent given
    the image (:func:`gankit.metrics.face_classifier.joint_log_probs`). RGB faces of any size
    (resized to the network's 64x64); 1-channel images are repeated to RGB."""

    name = "faces"
    has_logits = True

    def __init__(self, device: str | torch.device = "cpu") -> None:
        super().__init__()
        from .face_classifier import FEATURE_DIM, load_face_classifier

        self.net = load_face_classifier(device)
        self.num_features = FEATURE_DIM

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net.features(x)

    def class_logits(self, x: torch.Tensor) -> torch.Tensor:
        from .face_classifier import joint_log_probs

        return joint_log_probs(self.net(x))


def is_face_data(data) -> bool:
    """Whether ``data`` (a ``--data`` spec, a path or a :class:`gankit.data.Dataset`) is face data
    for ``--features auto``: the built-in ``fairface`` (with or without ``--where``), or a folder
    written by ``gankit prepare faces`` (it holds that command's ``report.json``), or a zip of one."""
    if data is None:
        return False
    source = getattr(data, "source", data)  # a Dataset: where it came from
    if not isinstance(source, (str, os.PathLike)):
        return False
    text = os.fspath(source).strip()
    if text.lower() == "fairface":
        return True
    try:
        from gankit.data.faces import REPORT_NAME
    except Exception:  # noqa: BLE001 - face preparation is optional; its file name is stable
        REPORT_NAME = "report.json"  # noqa: N806
    try:
        path = Path(text).expanduser()
        if path.is_file() and zipfile.is_zipfile(path):  # the prepared folder, zipped: its report at
            with zipfile.ZipFile(path) as archive:        # the root or in the one top folder
                names = [n for n in archive.namelist() if n.rsplit("/", 1)[-1] == REPORT_NAME and n.count("/") <= 1]
                if not names:
                    return False
                info = json.loads(archive.read(min(names, key=len)))
        else:
            report = path / REPORT_NAME
            if not report.is_file():
                return False
            info = json.loads(report.read_text())
    except (OSError, ValueError, zipfile.BadZipFile):
        return False
    return isinstance(info, dict) and "crops" in info and "faces" in info


# ---- Inception-v3 for FID (architecture as pytorch-fid's FIDInceptionA/C/E_1/E_2) ------------
def _fid_inception_v3() -> nn.Module:
    from torchvision.models import inception as tvi

    class FIDInceptionA(tvi.InceptionA):
        def _forward(self, x):
            b1 = self.branch1x1(x)
            b5 = self.branch5x5_2(self.branch5x5_1(x))
            b3 = self.branch3x3dbl_3(self.branch3x3dbl_2(self.branch3x3dbl_1(x)))
            # the TF graph excludes the padding from the average
            bp = self.branch_pool(F.avg_pool2d(x, kernel_size=3, stride=1, padding=1, count_include_pad=False))
            return [b1, b5, b3, bp]

    class FIDInceptionC(tvi.InceptionC):
        def _forward(self, x):
            b1 = self.branch1x1(x)
            b7 = self.branch7x7_3(self.branch7x7_2(self.branch7x7_1(x)))
            bd = x
            for layer in (self.branch7x7dbl_1, self.branch7x7dbl_2, self.branch7x7dbl_3, self.branch7x7dbl_4,
                          self.branch7x7dbl_5):
                bd = layer(bd)
            bp = self.branch_pool(F.avg_pool2d(x, kernel_size=3, stride=1, padding=1, count_include_pad=False))
            return [b1, b7, bd, bp]

    class FIDInceptionE(tvi.InceptionE):
        max_pool = False

        def _forward(self, x):
            b1 = self.branch1x1(x)
            b3 = self.branch3x3_1(x)
            b3 = torch.cat([self.branch3x3_2a(b3), self.branch3x3_2b(b3)], 1)
            bd = self.branch3x3dbl_2(self.branch3x3dbl_1(x))
            bd = torch.cat([self.branch3x3dbl_3a(bd), self.branch3x3dbl_3b(bd)], 1)
            if self.max_pool:  # the last block of the TF graph uses max pooling (a bug kept for FID)
                bp = F.max_pool2d(x, kernel_size=3, stride=1, padding=1)
            else:
                bp = F.avg_pool2d(x, kernel_size=3, stride=1, padding=1, count_include_pad=False)
            return [b1, b3, bd, self.branch_pool(bp)]

    class FIDInceptionE2(FIDInceptionE):
        max_pool = True

    net = tvi.Inception3(num_classes=1008, aux_logits=False, transform_input=False, init_weights=False)
    net.Mixed_5b = FIDInceptionA(192, pool_features=32)
    net.Mixed_5c = FIDInceptionA(256, pool_features=64)
    net.Mixed_5d = FIDInceptionA(288, pool_features=64)
    net.Mixed_6b = FIDInceptionC(768, channels_7x7=128)
    net.Mixed_6c = FIDInceptionC(768, channels_7x7=160)
    net.Mixed_6d = FIDInceptionC(768, channels_7x7=160)
    net.Mixed_6e = FIDInceptionC(768, channels_7x7=192)
    net.Mixed_7b = FIDInceptionE(1280)
    net.Mixed_7c = FIDInceptionE2(2048)
    return net


class InceptionFeatures(FeatureExtractor):
    """pool3 (2048) of the FID Inception-v3; inputs resized to 299x299 bilinear, grey -> RGB."""

    name = "inception"
    has_logits = True
    num_features = 2048

    def __init__(self, state_dict: dict[str, torch.Tensor] | None = None) -> None:
        super().__init__()
        self.net = _fid_inception_v3()
        if state_dict is not None:
            state_dict = {k: v for k, v in state_dict.items() if not k.startswith("AuxLogits.")}
            try:
                self.net.load_state_dict(state_dict)
            except RuntimeError as exc:
                raise GankitError("the Inception weights do not fit the FID Inception-v3 "
                                  f"(expected pytorch-fid's {INCEPTION_FILES[0]}): {str(exc).splitlines()[0]}") from None
        self.net.requires_grad_(False)
        self.eval()

    def _pool3(self, x: torch.Tensor) -> torch.Tensor:
        if x.dim() != 4 or x.shape[1] not in (1, 3):
            raise GankitError(f"Inception features need (N, 1 or 3, H, W) images, got shape {tuple(x.shape)}")
        if x.shape[1] == 1:
            x = x.expand(-1, 3, -1, -1)
        x = F.interpolate(x.float(), size=(299, 299), mode="bilinear", align_corners=False)
        n = self.net
        for layer in (n.Conv2d_1a_3x3, n.Conv2d_2a_3x3, n.Conv2d_2b_3x3, n.maxpool1, n.Conv2d_3b_1x1,
                      n.Conv2d_4a_3x3, n.maxpool2, n.Mixed_5b, n.Mixed_5c, n.Mixed_5d, n.Mixed_6a, n.Mixed_6b,
                      n.Mixed_6c, n.Mixed_6d, n.Mixed_6e, n.Mixed_7a, n.Mixed_7b, n.Mixed_7c):
            x = layer(x)
        return F.adaptive_avg_pool2d(x, 1).flatten(1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self._pool3(x)

    def class_logits(self, x: torch.Tensor) -> torch.Tensor:
        return self.net.fc(self._pool3(x))  # 1008 classes, as torch-fidelity's IS uses


def inception_search_paths() -> list[Path]:
    """Where gankit looks for the Inception weights when no path is given (no download, ever)."""
    dirs = []
    try:
        dirs.append(Path(torch.hub.get_dir()) / "checkpoints")
    except Exception:  # noqa: BLE001 - a broken TORCH_HOME must not stop the search
        pass
    home = Path(os.path.expanduser("~"))
    dirs += [home / ".cache" / "torch" / "hub" / "checkpoints", home / ".cache" / "torch-fidelity"]
    out: list[Path] = []
    for d in dirs:
        for name in INCEPTION_FILES:
            p = d / name
            if p not in out:
                out.append(p)
    return out


def find_inception_weights(path: str | os.PathLike | None = None) -> Path | None:
    """The given file (which must exist), else the first cached copy found, else None."""
    if path is not None:
        p = Path(path).expanduser()
        if not p.is_file():
            raise GankitError(f"--inception-weights {p}: no such file")
        return p
    for p in inception_search_paths():
        if p.is_file():
            return p
    return None


def missing_inception_message() -> str:
    where = inception_search_paths()[0]
    return (f"the Inception-v3 FID weights are not on this machine and gankit never downloads them: put "
            f"{INCEPTION_FILES[0]} (from {INCEPTION_URL}) in {where.parent}/ or pass --inception-weights PATH; "
            "without them, use --features mnist for 1-channel digits, --features faces for face images "
            "(in training: --set eval_features=faces) or --metrics swd (any images, no network)")


def load_inception(path: str | os.PathLike | None = None, device: str | torch.device = "cpu") -> InceptionFeatures:
    found = find_inception_weights(path)
    if found is None:
        raise GankitError(missing_inception_message())
    try:
        state = torch.load(found, map_location="cpu", weights_only=True)
    except Exception as exc:  # noqa: BLE001 - pickle errors come in many types
        raise GankitError(f"cannot read the Inception weights {found} (a plain state_dict saved with torch.save "
                          f"is needed; weights_only loading refuses anything else): {str(exc).splitlines()[0]}") from None
    if isinstance(state, dict) and "state_dict" in state and isinstance(state["state_dict"], dict):
        state = state["state_dict"]
    if not isinstance(state, dict):
        raise GankitError(f"{found} does not hold a state_dict")
    return InceptionFeatures(state).to(device)


def resolve_features(features: str, *, channels: int, resolution: int, inception_weights=None,
                     device: str | torch.device = "cpu", data=None) -> FeatureExtractor:
    """The extractor for ``features`` (auto | inception | mnist | faces) and data of this shape.

    ``auto``: Inception where its weights are on this machine; else ``faces`` for face data
    (:func:`is_face_data` of ``data``: ``fairface`` or a ``gankit prepare faces`` folder); else
    ``mnist`` for 1-channel images up to 32x32; else an error that says what to do.
    """
    features = (features or "auto").lower()
    if features not in FEATURE_CHOICES:
        raise GankitError(f"--features must be one of {', '.join(FEATURE_CHOICES)}, got {features!r}")
    if features == "inception":
        return load_inception(inception_weights, device)
    if features == "mnist":
        if channels != 1:
            raise GankitError(f"--features mnist needs 1-channel images, the data has {channels}; "
                              "use --features inception (with weights) or --metrics swd")
        return MnistFeatures(device)
    if features == "faces":
        if channels not in (1, 3):
            raise GankitError(f"--features faces needs face images (3 channels, or 1 repeated to RGB), "
                              f"the data has {channels}")
        return FaceFeatures(device)
    # auto
    if inception_weights is not None or find_inception_weights() is not None:
        return load_inception(inception_weights, device)
    if is_face_data(data):
        return FaceFeatures(device)
    if channels == 1 and resolution <= 32:
        return MnistFeatures(device)
    raise GankitError(f"no feature extractor for {channels}x{resolution}x{resolution} images offline: "
                      + missing_inception_message())
