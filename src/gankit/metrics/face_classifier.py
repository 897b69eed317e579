"""A small face CNN: age group, gender and race heads, and a 128-d embedding used as features.

Trained in the repository by ``scripts/train_face_classifier.py`` on 1,600 of the 2,000 built-in
``fairface`` faces (a seeded split stratified on the labels, :func:`held_out_split`; the other
400 are held out); the weights (fp16 safetensors, under 1 MB) and the training facts
(``face_cnn.json``: held-out accuracy per head beside the majority-class rate) ship in
``weights/``, so the face metrics need no network. See ``docs/metrics-faces.md``.

Uses:

* :class:`gankit.metrics.features.FaceFeatures` (``--features faces``): the embedding for
  FID / KID / precision-recall / nearest neighbours, and the joint attribute log-probabilities
  for the Inception Score;
* :func:`predict_attributes`: attribute probabilities of face images (for the latent tools).

The labels are FairFace's annotations of *perceived* attributes, and the network is small and
trained on few faces: its predictions are a measuring stick for generated faces, not facts
about people.
"""

from __future__ import annotations

import json
from functools import lru_cache
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from gankit.errors import GankitError

WEIGHTS_DIR = Path(__file__).with_name("weights")
WEIGHTS_FILE = WEIGHTS_DIR / "face_cnn.safetensors"
INFO_FILE = WEIGHTS_DIR / "face_cnn.json"
FEATURE_DIM = 128
INPUT_SIZE = 64

# FairFace's label values, in FairFace's own order (its predict.py); "age" groups youngest first.
AGE_GROUPS = ("0-2", "3-9", "10-19", "20-29", "30-39", "40-49", "50-59", "60-69", "more than 70")
GENDERS = ("Male", "Female")
RACES = ("White", "Black", "Latino_Hispanic", "East Asian", "Southeast Asian", "Indian", "Middle Eastern")
HEADS = {"age": AGE_GROUPS, "gender": GENDERS, "race": RACES}
# "column=value" names as gankit.data spells attributes (Dataset.attribute_names), heads in order
ATTRIBUTE_NAMES = tuple(f"{head}={value}" for head, values in HEADS.items() for value in values)
JOINT_CLASSES = len(AGE_GROUPS) * len(GENDERS) * len(RACES)  # 126: the Inception Score's classes


class FaceCNN(nn.Module):
    """(N, 3, H, W) faces in [-1, 1] -> ``{"age": (N, 9), "gender": (N, 2), "race": (N, 7)}`` logits;
    ``features`` -> (N, 128) penultimate embedding.

    A stride-2 3x3 stem (``width`` channels), then four 3x3 convolutions doubling the channels
    (2x ... 16x ``width``), each with BN and ReLU, the first three followed by a 2x2 max-pool;
    global average pooling, a fully connected 128-d embedding (ReLU) and three linear heads. Any
    H, W is resized to ``input_size`` (bilinear, antialiased when shrinking); 1-channel input is
    repeated to RGB. Small on purpose: about 20 M multiply-adds per 64x64 face, so it trains in
    minutes on a CPU.
    """

    def __init__(self, width: int = 16, input_size: int = INPUT_SIZE) -> None:
        super().__init__()
        self.width, self.input_size = width, input_size

        def block(c_in: int, c_out: int, stride: int = 1) -> list[nn.Module]:
            return [nn.Conv2d(c_in, c_out, 3, stride=stride, padding=1, bias=False), nn.BatchNorm2d(c_out),
                    nn.ReLU(inplace=True)]

        layers = block(3, width, stride=2)
        c_in = width
        for stage in range(4):
            c_out = width * 2 ** (stage + 1)
            layers += block(c_in, c_out)
            if stage < 3:
                layers.append(nn.MaxPool2d(2))
            c_in = c_out
        layers += [nn.AdaptiveAvgPool2d(1), nn.Flatten()]
        self.body = nn.Sequential(*layers)
        self.fc = nn.Sequential(nn.Linear(c_in, FEATURE_DIM), nn.ReLU(inplace=True))
        self.dropout = nn.Dropout(0.3)
        self.heads = nn.ModuleDict({name: nn.Linear(FEATURE_DIM, len(values)) for name, values in HEADS.items()})

    def prepare(self, x: torch.Tensor) -> torch.Tensor:
        if x.dim() != 4 or x.shape[1] not in (1, 3):
            raise GankitError(f"the face classifier takes (N, 3, H, W) face images (or 1-channel, repeated "
                              f"to RGB), got shape {tuple(x.shape)}")
        if x.dtype == torch.uint8:
            x = x.float().div(127.5).sub(1.0)
        x = x.float()
        if x.shape[1] == 1:
            x = x.expand(-1, 3, -1, -1)
        size = self.input_size
        if tuple(x.shape[-2:]) != (size, size):
            x = F.interpolate(x, size=(size, size), mode="bilinear", align_corners=False,
                              antialias=x.shape[-1] > size or x.shape[-2] > size)
        return x

    def features(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(self.body(self.prepare(x)))

    def heads_from_features(self, f: torch.Tensor) -> dict[str, torch.Tensor]:
        f = self.dropout(f)
        return {name: head(f) for name, head in self.heads.items()}

    def forward(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        return self.heads_from_features(self.features(x))


def joint_log_probs(logits: dict[str, torch.Tensor]) -> torch.Tensor:
    """(N, 126) log p(age, gender, race | x) = log p(age|x) + log p(gender|x) + log p(race|x):
    the three heads taken as independent given the image; age varies slowest, race fastest."""
    a, g, r = (torch.log_softmax(logits[k].float(), dim=1) for k in ("age", "gender", "race"))
    joint = a[:, :, None, None] + g[:, None, :, None] + r[:, None, None, :]
    return joint.reshape(joint.shape[0], -1)


def read_info() -> dict:
    """Training facts of the shipped weights (seed, split, held-out accuracy, variants)."""
    try:
        return json.loads(INFO_FILE.read_text())
    except (OSError, json.JSONDecodeError):
        return {}


def missing_weights_message() -> str:
    return (f"the face classifier weights are missing ({WEIGHTS_FILE}); rebuild them with: "
            "python scripts/train_face_classifier.py (a few CPU minutes)")


@lru_cache(maxsize=None)
def _stored() -> tuple[dict[str, torch.Tensor], dict[str, str]]:
    if not WEIGHTS_FILE.is_file():
        raise GankitError(missing_weights_message())
    from safetensors import safe_open

    try:
        with safe_open(str(WEIGHTS_FILE), framework="pt") as f:
            meta = dict(f.metadata() or {})
            state = {k: f.get_tensor(k) for k in f.keys()}
    except Exception as exc:  # noqa: BLE001 - safetensors raises several types for a bad file
        raise GankitError(f"cannot read the face classifier weights {WEIGHTS_FILE}: {str(exc).splitlines()[0]}; "
                          "rebuild them with: python scripts/train_face_classifier.py") from None
    return state, meta


def build_from_metadata(meta: dict[str, str]) -> FaceCNN:
    return FaceCNN(width=int(meta.get("width", 16)), input_size=int(meta.get("input_size", INPUT_SIZE)))


def load_face_classifier(device: str | torch.device = "cpu") -> FaceCNN:
    """The shipped classifier (float32, eval mode, frozen) on ``device``."""
    state, meta = _stored()
    model = build_from_metadata(meta)
    try:
        model.load_state_dict({k: (v.float() if v.is_floating_point() else v.clone()) for k, v in state.items()})
    except RuntimeError as exc:
        raise GankitError(f"the face classifier weights {WEIGHTS_FILE} do not fit FaceCNN: "
                          f"{str(exc).splitlines()[0]}") from None
    model.requires_grad_(False)
    return model.eval().to(device)


@lru_cache(maxsize=4)
def _cached_classifier(device: str) -> FaceCNN:
    return load_face_classifier(device)


@torch.inference_mode()
def predict_attributes(images: torch.Tensor, *, batch_size: int = 256,
                       device: str | torch.device | None = None) -> dict[str, torch.Tensor]:
    """Attribute probabilities of face images: ``{"age": (N, 9), "gender": (N, 2), "race": (N, 7)}``
    float32 on the CPU, each row summing to 1; the columns follow :data:`HEADS`
    (``AGE_GROUPS``, ``GENDERS``, ``RACES``).

    ``images``: (N, 3, H, W) float in [-1, 1] (as generators give them) or uint8 (as datasets
    hold them), any size (resized to 64x64); 1-channel images are repeated to RGB. Accuracy on
    held-out real faces is in ``read_info()["held_out_accuracy"]``; on generated faces it is
    lower where the faces are poor. ``device`` defaults to the images' device.
    """
    if not isinstance(images, torch.Tensor) or images.dim() != 4:
        raise GankitError(f"predict_attributes takes an (N, C, H, W) image tensor, got "
                          f"{tuple(getattr(images, 'shape', ())) or type(images).__name__}")
    device = torch.device(device) if device is not None else images.device
    model = _cached_classifier(str(device))
    parts: dict[str, list[torch.Tensor]] = {k: [] for k in HEADS}
    for i in range(0, images.shape[0], batch_size):
        logits = model(images[i:i + batch_size].to(device))
        for k in HEADS:
            parts[k].append(torch.softmax(logits[k].float(), dim=1).cpu())
    return {k: (torch.cat(v) if v else torch.zeros(0, len(HEADS[k]))) for k, v in parts.items()}


def attribute_probabilities(images: torch.Tensor, **kwargs) -> torch.Tensor:
    """(N, 18) probabilities in the order of :data:`ATTRIBUTE_NAMES` (``age=0-2`` ... ``race=Middle
    Eastern``), the names gankit's datasets and ``--where`` use; each head's columns sum to 1."""
    probs = predict_attributes(images, **kwargs)
    return torch.cat([probs[k] for k in HEADS], dim=1)


# ---- labels and the held-out split (used by the training script and the tests) -----------------
def labels_from_dataset(ds) -> torch.Tensor:
    """(N, 3) long class indices (age, gender, race; -1 where unlabelled) from a dataset whose
    ``attributes``/``attribute_names`` hold FairFace's one-hot ``age=...``, ``gender=...``,
    ``race=...`` columns (``load_dataset("fairface")``, or a folder with such a labels.csv)."""
    names = list(getattr(ds, "attribute_names", None) or [])
    attrs = getattr(ds, "attributes", None)
    if attrs is None or not names:
        raise GankitError("the data has no age/gender/race labels (load_dataset('fairface') has them)")
    out = torch.full((attrs.shape[0], len(HEADS)), -1, dtype=torch.long)
    for h, (head, values) in enumerate(HEADS.items()):
        found = False
        for c, value in enumerate(values):
            name = f"{head}={value}"
            if name in names:
                found = True
                out[attrs[:, names.index(name)] > 0.5, h] = c
        if not found:
            raise GankitError(f"the data has no {head!r} labels with FairFace's values ({', '.join(values)})")
    return out


def held_out_split(labels: torch.Tensor, *, held_out: int = 400, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """Sorted index tensors ``(train, held_out)``: a seeded shuffle, stably sorted by the joint
    (race, gender, age) label, then evenly spaced positions held out, so each race x gender group
    (and roughly each age group) keeps its share in both parts. Same labels + seed, same split."""
    n = labels.shape[0]
    if not 0 < held_out < n:
        raise GankitError(f"held_out must be between 1 and {n - 1}, got {held_out}")
    perm = torch.randperm(n, generator=torch.Generator().manual_seed(seed))
    lab = labels[perm] + 1  # -1 (unlabelled) -> 0
    key = (lab[:, 2] * (len(GENDERS) + 1) + lab[:, 1]) * (len(AGE_GROUPS) + 1) + lab[:, 0]
    order = perm[torch.sort(key, stable=True).indices]
    pos = torch.arange(n)
    take = (pos + 1) * held_out // n > pos * held_out // n  # exactly `held_out` evenly spaced picks
    return order[~take].sort().values, order[take].sort().values
