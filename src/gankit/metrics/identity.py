"""Face identity distance: dlib's 128-d face recognition embedding (a ResNet trained for face
verification, King 2017, dlib 19.x ``face_recognition_model_v1``; about 99.4% on LFW). Two faces
closer than 0.6 (Euclidean) are taken as the same person by dlib's convention.

Generated faces are small and already aligned, so no detector runs: each image is upscaled to
150x150 and the 5-point landmark predictor is run in a fixed box. The box, (10, 10)-(139, 139)
of 150 px, is the median box dlib's HOG detector finds on the built-in ``fairface`` faces at 64 px
upscaled the same way (215 of 300 found); it is the box the landmark model expects from a
detector. Needs the ``faces`` extra (``pip install 'gankit[faces]'``: dlib-bin and
face-recognition-models, whose weights ship in the wheels). Used by the editing benchmark and
usable by projection ("is the reconstruction still the same person?").
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np
import torch

from gankit.errors import GankitError

SIZE = 150  # dlib's face chip size
BOX = (10, 10, 139, 139)  # left, top, right, bottom at SIZE px (see the module doc)
SAME_PERSON = 0.6
MISSING = "identity distance needs dlib's face models, the faces extra: pip install 'gankit[faces]'"


@lru_cache(maxsize=1)
def _models():
    try:
        import dlib
    except ImportError:
        raise GankitError(MISSING) from None
    from gankit.data.faces import models_dir

    try:
        folder = models_dir()
    except GankitError:
        raise GankitError(MISSING) from None
    files = [folder / "shape_predictor_5_face_landmarks.dat", folder / "dlib_face_recognition_resnet_model_v1.dat"]
    missing = [f.name for f in files if not f.is_file()]
    if missing:
        raise GankitError(f"{MISSING} ({', '.join(missing)} missing in {folder})")
    return dlib, dlib.shape_predictor(str(files[0])), dlib.face_recognition_model_v1(str(files[1]))


def identity_embeddings(images: torch.Tensor) -> torch.Tensor:
    """(N, 128) float32 dlib face descriptors of aligned face images (N, 3, H, W) in [-1, 1]
    (1-channel images are repeated to RGB)."""
    dlib, predictor, recogniser = _models()
    if not isinstance(images, torch.Tensor) or images.dim() != 4 or images.shape[1] not in (1, 3):
        raise GankitError(f"identity embeddings take (N, 3, H, W) images, got {tuple(getattr(images, 'shape', ()))}")
    x = images.detach().float().cpu().clamp(-1, 1)
    if x.shape[1] == 1:
        x = x.expand(-1, 3, -1, -1)
    if x.shape[-2:] != (SIZE, SIZE):
        x = torch.nn.functional.interpolate(x, size=(SIZE, SIZE), mode="bicubic", align_corners=False,
                                            antialias=x.shape[-1] > SIZE).clamp(-1, 1)
    pixels = ((x + 1) * 127.5).round().to(torch.uint8).permute(0, 2, 3, 1).numpy()
    box = dlib.rectangle(*BOX)
    out = np.empty((len(pixels), 128), dtype=np.float32)
    for i, img in enumerate(pixels):
        img = np.ascontiguousarray(img)
        out[i] = np.asarray(recogniser.compute_face_descriptor(img, predictor(img, box)), dtype=np.float32)
    return torch.from_numpy(out)


def identity_distance(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """(N,) Euclidean distances between the dlib face embeddings of ``a`` and ``b`` (N, 3, H, W) in
    [-1, 1], image by image; below :data:`SAME_PERSON` (0.6) dlib calls them the same person."""
    if a.shape[0] != b.shape[0]:
        raise GankitError(f"identity_distance compares image i with image i; got {a.shape[0]} and {b.shape[0]} images")
    return (identity_embeddings(a) - identity_embeddings(b)).norm(dim=1)
