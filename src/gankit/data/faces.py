"""Aligned square face crops from raw photos, in the manner of FFHQ (Karras et al. 2019).

``gankit prepare faces SRC --out DIR`` (:mod:`gankit.cli_prepare`) calls :func:`prepare_faces`:
every photo under SRC (a folder, class folders or a .zip; EXIF orientation applied, unreadable
files skipped and counted) is searched for faces, and each face found becomes one square crop
with the eyes level, the face centred and a margin around it.

How a face is found and aligned (all models ship inside pip packages; nothing is downloaded):

1. **Detection.** dlib's HOG frontal-face detector (``dlib-bin``) on a working copy of the photo
   scaled so that ``min_face`` pixels become the detector's 80-pixel window (at most
   ``max_pixels`` pixels). The detector tolerates about 15 degrees of head roll, so the working
   copy is also searched turned by each of ``angles`` (default 0, +-15, +-35 degrees), and the
   hits of the turns are merged (the best-scored hit of each face is kept); a hit needs a HOG
   score of at least ``threshold`` (0, dlib's own default). ``detector="cnn"`` uses dlib's MMOD
   CNN detector instead (one pass: it copes with roll itself; finds more faces, about 8x slower).
2. **Landmarks.** dlib's 5-point predictor from ``face-recognition-models`` (the two corners of
   each eye and the base of the nose; released by dlib's author for any use) on the same turned
   copy, mapped back to the photo. ``landmarks=68`` uses the 68-point predictor instead: its
   training data (iBUG 300-W) excludes commercial use, so it is never the default.
3. **Alignment** (:func:`ffhq_quad`): FFHQ's oriented square from the eye centres and the mouth
   centre: side ``max(2 * |eye_to_eye|, 1.8 * |eye_to_mouth|) * 2``, centred at
   ``eye_avg + 0.1 * eye_to_mouth``, turned so the eye line is level (averaged with the
   perpendicular of the eye-to-mouth line). The 5 points have no mouth, so
   :func:`estimate_mouth` places it from the eyes and the nose with a linear fit measured on
   FairFace faces (``bench/prepare_faces.py`` reports its error and its effect on the square).
4. **Cropping** (:func:`crop_quad`): large photos are first reduced by an integer box filter,
   the square is cut out with a border, areas outside the photo are filled by repeating its edge
   pixels faded into a blur of them (never mirrored, so no ghost faces appear), and the square is
   resampled to ``size`` (bilinear at up to 4x the size, then Lanczos down; bicubic when the
   face is smaller than the output).

Coordinates are continuous photo coordinates of the upright (EXIF-rotated) photo: pixel
``(i, j)`` covers ``[i, i+1) x [j, j+1)``, so its centre is ``(i + 0.5, j + 0.5)``.
"""

from __future__ import annotations

import importlib.util
import json
import math
import os
import time
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Sequence

import numpy as np
from PIL import Image, ImageFilter

from ..errors import GankitError
from ..files import write_text_atomic

EXTRA_HINT = "face preparation needs the faces extra: pip install 'gankit[faces]'"
DETECTORS = ("hog", "cnn")
LANDMARKS = (5, 68)
FORMATS = {"png": ("PNG", ".png"), "jpg": ("JPEG", ".jpg"), "jpeg": ("JPEG", ".jpg")}
DEFAULT_ANGLES = (0.0, -15.0, 15.0, -35.0, 35.0)
DETECTOR_WINDOW = 80  # pixels: the smallest face dlib's HOG and MMOD detectors find unscaled
DEFAULT_MAX_PIXELS = 2_000_000  # the detector's working copy (larger photos are scaled down)
REPORT_NAME = "report.json"
DEFAULT_THRESHOLD = 0.0  # the HOG score a hit needs (dlib's default; -0.3 found 9 % more faces and 20x the false hits)

# Mouth centre from the 5 points, in the eye frame: origin at the eyes' midpoint, unit = the
# eye-to-eye distance, u along the eye line (image-left eye -> image-right eye), v at right angles
# to it pointing down the face. mouth_u = U0 + U1 * nose_u, mouth_v = V0 + V1 * nose_v.
# Least-squares fit to the 68-point predictor's mouth-corner midpoint on FairFace faces 1001-2000
# (bench/prepare_faces.py --calibrate); on faces 1-1000 the residuals spread 0.13 (u) and 0.12 (v)
# eye distances, and FFHQ's square moves by 0.3 % of its side on average (docs/prepare-faces.md).
MOUTH_FIT = (0.0, 0.14, 0.33, 0.97)


# --------------------------------------------------------------------------- geometry (pure)

def eye_frame(eye_left: np.ndarray, eye_right: np.ndarray) -> tuple[np.ndarray, float, np.ndarray, np.ndarray]:
    """``(midpoint, eye distance, u, v)``: u along the eye line, v at right angles pointing down
    the face (for level eyes in y-down image coordinates, u = (1, 0) and v = (0, 1))."""
    el, er = np.asarray(eye_left, float), np.asarray(eye_right, float)
    mid = (el + er) / 2
    d = float(np.linalg.norm(er - el))
    if not d > 0:
        raise ValueError("the two eyes are at the same point")
    u = (er - el) / d
    return mid, d, u, np.array([-u[1], u[0]])


def estimate_mouth(eye_left, eye_right, nose, fit: Sequence[float] = MOUTH_FIT) -> np.ndarray:
    """The mouth centre estimated from the eye centres and the base of the nose (5-point
    landmarks have no mouth): linear in the nose's position in the eye frame (see MOUTH_FIT)."""
    mid, d, u, v = eye_frame(eye_left, eye_right)
    q = np.asarray(nose, float) - mid
    nu, nv = float(q @ u) / d, float(q @ v) / d
    u0, u1, v0, v1 = fit
    return mid + d * ((u0 + u1 * nu) * u + (v0 + v1 * nv) * v)


def ffhq_quad(eye_left, eye_right, mouth) -> np.ndarray:
    """FFHQ's oriented crop square as 4 corners ``[top-left, bottom-left, bottom-right, top-right]``
    (``(4, 2)``, photo coordinates; the order of PIL's QUAD transform).

    The half-side vector ``x`` points from the face's left to its right: the eye-to-eye vector
    plus the eye-to-mouth vector turned a quarter to the left (so a tilted mouth line corrects a
    noisy eye line), scaled to ``max(2 |eye_to_eye|, 1.8 |eye_to_mouth|)``; ``y`` is ``x`` turned
    a quarter to point down the face; the centre lies a tenth of the way from the eyes to the mouth.
    """
    el, er, m = (np.asarray(p, float) for p in (eye_left, eye_right, mouth))
    eye_avg = (el + er) / 2
    e2e, e2m = er - el, m - eye_avg
    x = e2e + np.array([e2m[1], -e2m[0]])  # e2m turned by -90 degrees: a downward vector -> rightward
    norm = float(np.linalg.norm(x))
    if not norm > 0:
        raise ValueError("degenerate landmarks: eyes and mouth do not span a face")
    x *= max(2.0 * float(np.linalg.norm(e2e)), 1.8 * float(np.linalg.norm(e2m))) / norm
    y = np.array([-x[1], x[0]])
    c = eye_avg + 0.1 * e2m
    return np.stack([c - x - y, c - x + y, c + x + y, c + x - y])


def quad_to_crop(quad: np.ndarray, size: int) -> np.ndarray:
    """The 2x3 affine matrix taking photo coordinates to the coordinates of the ``size`` crop
    cut along ``quad`` (for measuring where a photo point lands in a crop)."""
    q = np.asarray(quad, float)
    ax, ay = (q[3] - q[0]) / size, (q[1] - q[0]) / size  # crop unit steps in the photo
    inv = np.linalg.inv(np.stack([ax, ay], axis=1))
    return np.concatenate([inv, (-inv @ q[0])[:, None]], axis=1)


def apply_affine(matrix: np.ndarray, points) -> np.ndarray:
    p = np.asarray(points, float)
    return p @ matrix[:, :2].T + matrix[:, 2]


def eye_angle(eye_left, eye_right) -> float:
    """Angle of the eye line in degrees (0 = level; positive = the right eye lower)."""
    d = np.asarray(eye_right, float) - np.asarray(eye_left, float)
    return math.degrees(math.atan2(d[1], d[0]))


def _fill_outside(a: np.ndarray, inside: tuple[int, int, int, int], side: float) -> np.ndarray:
    """``a`` was edge-padded around the photo region ``inside = (x0, y0, x1, y1)``: fade the padding
    into a blur of itself and, further out, towards the edge's mean colour (no mirrored content)."""
    h, w = a.shape[:2]
    x0, y0, x1, y1 = inside
    xs, ys = np.arange(w) + 0.5, np.arange(h) + 0.5
    dx = np.maximum(np.maximum(x0 - xs, xs - x1), 0)
    dy = np.maximum(np.maximum(y0 - ys, ys - y1), 0)
    dist = np.hypot(dx[None, :], dy[:, None])
    mask = np.clip(dist / max(0.3 * side, 1.0), 0, 1)[..., None]
    img = a.astype(np.float32)
    radius = max(side * 0.03, 1.0)
    blur = np.asarray(Image.fromarray(a).filter(ImageFilter.GaussianBlur(radius)), np.float32)
    img += (blur - img) * np.clip(mask * 3, 0, 1)
    edge = a[y0:y1, x0:x1].reshape(-1, a.shape[2]).mean(0) if x1 > x0 and y1 > y0 else img.mean((0, 1))
    img += (edge - img) * (mask * 0.7)
    return np.clip(np.rint(img), 0, 255).astype(np.uint8)


def crop_quad(image: Image.Image, quad, size: int) -> Image.Image:
    """Resample the square ``quad`` of an RGB ``image`` to a ``size`` x ``size`` crop (see the
    module notes: box-filter reduction, edge-and-blur fill outside the photo, supersampling)."""
    quad = np.asarray(quad, float).copy()
    side = float(np.linalg.norm(quad[3] - quad[0]))
    shrink = int(side / size / 2)
    if shrink > 1:
        image = image.reduce(shrink)
        quad /= shrink
        side /= shrink
    border = max(int(round(side * 0.1)), 3)
    lo = np.floor(quad.min(0)).astype(int) - border
    hi = np.ceil(quad.max(0)).astype(int) + border
    w, h = image.size
    cx0, cy0 = max(lo[0], 0), max(lo[1], 0)
    cx1, cy1 = min(hi[0], w), min(hi[1], h)
    if cx1 <= cx0 or cy1 <= cy0:  # the square lies wholly outside the photo
        raise ValueError("the crop square lies outside the photo")
    region = np.asarray(image.crop((cx0, cy0, cx1, cy1)).convert("RGB"))
    pads = (cy0 - lo[1], hi[1] - cy1, cx0 - lo[0], hi[0] - cx1)  # top, bottom, left, right
    if any(pads):
        region = np.pad(region, ((pads[0], pads[1]), (pads[2], pads[3]), (0, 0)), mode="edge")
        region = _fill_outside(region, (pads[2], pads[0], pads[2] + cx1 - cx0, pads[0] + cy1 - cy0), side)
    quad -= lo
    src = Image.fromarray(region)
    flat = tuple(float(v) for v in quad.reshape(-1))
    if side > size:
        render = size * min(4, math.ceil(side / size))
        out = src.transform((render, render), Image.Transform.QUAD, flat, Image.Resampling.BILINEAR)
        return out.resize((size, size), Image.Resampling.LANCZOS)
    return src.transform((size, size), Image.Transform.QUAD, flat, Image.Resampling.BICUBIC)


# --------------------------------------------------------------------------- models (dlib)

def models_dir() -> Path:
    """The ``models/`` folder of the ``face-recognition-models`` package, found without importing
    it (its ``__init__`` imports ``pkg_resources``, gone from current setuptools)."""
    try:
        spec = importlib.util.find_spec("face_recognition_models")
    except (ImportError, ValueError):
        spec = None
    if spec is None or not spec.origin:
        raise GankitError(EXTRA_HINT)
    folder = Path(spec.origin).parent / "models"
    if not folder.is_dir():
        raise GankitError(f"{EXTRA_HINT} (face-recognition-models has no models/ folder at {folder})")
    return folder


def _import_dlib():
    try:
        import dlib
    except ImportError:
        raise GankitError(EXTRA_HINT) from None
    return dlib


@dataclass
class FaceModels:
    """dlib's detector and landmark predictor, loaded once (:func:`load_models`)."""

    dlib: object
    detector: object
    detector_kind: str
    predictor: object
    points: int


@lru_cache(maxsize=4)
def load_models(detector: str = "hog", landmarks: int = 5) -> FaceModels:
    """Load dlib's ``hog`` or ``cnn`` face detector and its 5- or 68-point landmark predictor;
    GankitError with the install line when the ``faces`` extra is missing."""
    if detector not in DETECTORS:
        raise GankitError(f"detector must be one of {', '.join(DETECTORS)}, got {detector!r}")
    if landmarks not in LANDMARKS:
        raise GankitError(f"landmarks must be 5 or 68, got {landmarks!r}")
    dlib = _import_dlib()
    folder = models_dir()
    predictor_file = folder / f"shape_predictor_{landmarks}_face_landmarks.dat"
    if not predictor_file.is_file():
        raise GankitError(f"{EXTRA_HINT} ({predictor_file.name} is missing)")
    if detector == "cnn":
        det = dlib.cnn_face_detection_model_v1(str(folder / "mmod_human_face_detector.dat"))
    else:
        det = dlib.get_frontal_face_detector()
    return FaceModels(dlib, det, detector, dlib.shape_predictor(str(predictor_file)), landmarks)


# --------------------------------------------------------------------------- detection

@dataclass
class Face:
    """One face in a photo: landmarks in photo coordinates, the detector's box side in photo
    pixels, its score and the turn of the photo (degrees) it was found in."""

    landmarks: np.ndarray
    box: float
    score: float
    angle: float = 0.0

    @property
    def eyes(self) -> tuple[np.ndarray, np.ndarray]:
        """Centres of the image-left and image-right eye."""
        p = self.landmarks
        if len(p) == 5:  # dlib's 5 points: 0-1 image-right eye, 2-3 image-left eye, 4 nose base
            return p[2:4].mean(0), p[0:2].mean(0)
        return p[36:42].mean(0), p[42:48].mean(0)

    @property
    def mouth(self) -> np.ndarray:
        if len(self.landmarks) == 5:
            return estimate_mouth(*self.eyes, self.landmarks[4])
        return (self.landmarks[48] + self.landmarks[54]) / 2

    def quad(self) -> np.ndarray:
        return ffhq_quad(*self.eyes, self.mouth)


def _turn(size: tuple[int, int], degrees: float) -> tuple[tuple[int, int], np.ndarray, np.ndarray]:
    """Turning a ``(w, h)`` picture by ``degrees`` (counter-clockwise as seen) on an expanded
    canvas: ``(new size, M, t)`` with turned = M @ p + t for original points p."""
    w, h = size
    a = math.radians(degrees)
    c, s = math.cos(a), math.sin(a)
    nw = int(math.ceil(abs(w * c) + abs(h * s)))
    nh = int(math.ceil(abs(w * s) + abs(h * c)))
    m = np.array([[c, s], [-s, c]])  # y points down, so this turns counter-clockwise on screen
    t = np.array([nw / 2, nh / 2]) - m @ np.array([w / 2, h / 2])
    return (nw, nh), m, t


def turn_image(image: Image.Image, degrees: float, fill=None) -> tuple[Image.Image, np.ndarray, np.ndarray]:
    """``image`` turned by ``degrees`` on an expanded canvas and the map (M, t) of :func:`_turn`."""
    (nw, nh), m, t = _turn(image.size, degrees)
    inv = m.T  # rotation: inverse is the transpose
    off = -inv @ t
    data = (inv[0, 0], inv[0, 1], off[0], inv[1, 0], inv[1, 1], off[1])
    out = image.transform((nw, nh), Image.Transform.AFFINE, data, Image.Resampling.BILINEAR, fillcolor=fill)
    return out, m, t


def _points(shape) -> np.ndarray:
    return np.array([(p.x + 0.5, p.y + 0.5) for p in shape.parts()], dtype=float)


def find_candidates(models: FaceModels, photo: np.ndarray, *, min_face: float = 64,
                    angles: Sequence[float] = DEFAULT_ANGLES, threshold: float = DEFAULT_THRESHOLD,
                    max_pixels: int = DEFAULT_MAX_PIXELS) -> list[Face]:
    """Every detector hit in an RGB ``(H, W, 3)`` uint8 photo, one per hit and turn (not merged,
    not checked): what :func:`detect_faces` chooses from."""
    h, w = photo.shape[:2]
    scale = min(DETECTOR_WINDOW / max(float(min_face), 1.0), math.sqrt(max_pixels / float(w * h)))
    im = Image.fromarray(photo)
    if abs(scale - 1) > 0.02:
        im = im.resize((max(1, round(w * scale)), max(1, round(h * scale))), Image.Resampling.BILINEAR)
        sx, sy = im.width / w, im.height / h
    else:
        scale, sx, sy = 1.0, 1.0, 1.0
    fill = tuple(int(v) for v in photo.reshape(-1, photo.shape[-1]).mean(0))
    found: list[Face] = []
    for angle in (angles if models.detector_kind == "hog" else (0.0,)):
        if angle:
            turned, m, t = turn_image(im, angle, fill)
        else:
            turned, m, t = im, np.eye(2), np.zeros(2)
        arr = np.asarray(turned)
        if models.detector_kind == "cnn":
            hits = [(d.rect, float(d.confidence)) for d in models.detector(arr, 0)]
        else:
            rects, scores, _ = models.detector.run(arr, 0, threshold)
            hits = list(zip(rects, map(float, scores)))
        for rect, score in hits:
            pts = _points(models.predictor(arr, rect))
            pts = (pts - t) @ m  # back to the working copy: p = M^T (q - t)
            pts /= np.array([sx, sy])
            found.append(Face(pts, float(rect.width()) / scale, score, float(angle)))
    return found


def detect_faces(models: FaceModels, photo: np.ndarray, *, min_face: float = 64,
                 angles: Sequence[float] = DEFAULT_ANGLES, threshold: float = DEFAULT_THRESHOLD,
                 max_pixels: int = DEFAULT_MAX_PIXELS) -> list[Face]:
    """Faces in an RGB ``(H, W, 3)`` uint8 photo, largest first (faces smaller than ``min_face``
    included: the caller filters them so it can count them)."""
    found = find_candidates(models, photo, min_face=min_face, angles=angles, threshold=threshold,
                            max_pixels=max_pixels)
    return merge_faces(found)


def merge_faces(faces: list[Face]) -> list[Face]:
    """One face per person: hits whose eye midpoints lie within half an eye distance of a
    better-scored hit are dropped. Largest first."""
    def mid_and_distance(f: Face) -> tuple[np.ndarray, float]:
        el, er = f.eyes
        return (el + er) / 2, float(np.linalg.norm(er - el))

    kept: list[tuple[Face, np.ndarray, float]] = []
    for f in sorted(faces, key=lambda f: -f.score):
        mid, d = mid_and_distance(f)
        if d > 0 and all(np.linalg.norm(mid - m) >= 0.5 * max(d, dk) for _, m, dk in kept):
            kept.append((f, mid, d))
    return sorted((f for f, _, _ in kept), key=lambda f: -f.box)


# --------------------------------------------------------------------------- the whole folder

@dataclass
class PrepareReport:
    """What :func:`prepare_faces` did; also written to ``OUT/report.json``."""

    src: str
    out: str
    size: int
    photos: int = 0
    photos_with_faces: int = 0
    crops: list[dict] = field(default_factory=list)
    no_face: list[str] = field(default_factory=list)
    skipped: list[tuple[str, str]] = field(default_factory=list)
    small_faces: int = 0
    extra_faces: int = 0
    seconds: float = 0.0
    settings: dict = field(default_factory=dict)

    def to_json(self) -> dict:
        return {
            "src": self.src, "out": self.out, "size": self.size, "settings": self.settings,
            "photos": self.photos, "photos_with_faces": self.photos_with_faces, "faces": len(self.crops),
            "no_face_count": len(self.no_face), "no_face": self.no_face,
            "skipped_count": len(self.skipped), "skipped": [list(s) for s in self.skipped],
            "small_faces_ignored": self.small_faces, "extra_faces_dropped": self.extra_faces,
            "seconds": round(self.seconds, 2), "crops": self.crops,
        }

    def write(self, folder: Path) -> Path:
        path = folder / REPORT_NAME
        write_text_atomic(path, json.dumps(self.to_json(), indent=1) + "\n")
        return path


def _output_stems(names: list[str]) -> dict[str, str]:
    """Photo name -> output path stem (relative, the source's folders kept); photos sharing a
    stem in one folder (``a.jpg``, ``a.png``) keep their extension in it (``a_jpg``)."""
    stems = {n: os.path.splitext(n)[0] for n in names}
    count: dict[str, int] = {}
    for s in stems.values():
        count[s.lower()] = count.get(s.lower(), 0) + 1
    return {n: (s if count[s.lower()] == 1 else s + "_" + os.path.splitext(n)[1][1:].lower())
            for n, s in stems.items()}


def _r(a) -> list:
    return np.round(np.asarray(a, float), 1).tolist()


def prepare_faces(src, out, size: int = 256, *, largest: bool = False, min_face: float = 64,
                  fmt: str = "png", detector: str = "hog", landmarks: int = 5,
                  angles: Sequence[float] = DEFAULT_ANGLES, threshold: float = DEFAULT_THRESHOLD,
                  progress: bool = True) -> PrepareReport:
    """Write one aligned ``size`` x ``size`` crop per face found in the photos of ``src`` into
    ``out`` (``<photo stem>_<i>.png``, largest face first, the source's sub-folders kept) and
    ``out/report.json``; returns the report.

    GankitError (one line for the CLI) when the ``faces`` extra is missing, ``out`` already holds
    files, ``src`` holds no image, or no face is found in any photo (the report is written first).
    """
    from . import images
    from ..engine.monitor import ProgressBar

    src, out = Path(src), Path(out)
    if not 16 <= size <= 4096:
        raise GankitError(f"--size must be between 16 and 4096, got {size}")
    if fmt.lower() not in FORMATS:
        raise GankitError(f"--format must be png or jpg, got {fmt!r}")
    if not min_face > 0:
        raise GankitError(f"--min-face must be > 0, got {min_face}")
    pil_format, ext = FORMATS[fmt.lower()]
    if not src.exists():
        raise GankitError(f"photos not found: {src}")
    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        raise GankitError(f"{out} already exists and is not empty; choose a new --out (face crops are never overwritten)")
    models = load_models(detector, landmarks)  # before any file is written: a missing extra says so first

    report = PrepareReport(str(src), str(out), size, settings={
        "detector": detector, "landmarks": landmarks, "min_face": min_face, "largest": largest,
        "angles": list(angles) if detector == "hog" else [0.0], "threshold": threshold, "format": ext[1:]})
    started = time.perf_counter()
    out.mkdir(parents=True, exist_ok=True)
    try:
        source = images.open_source(src)
    except GankitError:
        report.write(out)
        raise
    try:
        try:  # an --out inside SRC is not read back
            inner = out.resolve().relative_to(src.resolve()).as_posix() + "/"
            source.entries = [e for e in source.entries if not e.name.startswith(inner)]
        except ValueError:
            pass
        stems = _output_stems([e.name for e in source.entries])
        bar = ProgressBar(len(source.entries), 0, enabled=progress, description="faces")
        done = 0
        try:
            for entry, photo in images.iter_decoded(source, report.skipped, channels=3):
                report.photos += 1
                _one_photo(models, entry.name, photo, stems[entry.name], out, report, size=size,
                           largest=largest, min_face=min_face, angles=angles, threshold=threshold,
                           pil_format=pil_format, ext=ext)
                done = report.photos + len(report.skipped)
                bar.update(done, {"faces": len(report.crops), "no_face": len(report.no_face)})
        finally:
            bar.close()
    finally:
        source.close()
    report.seconds = time.perf_counter() - started
    report.write(out)
    if report.photos == 0:
        name, reason = report.skipped[0]
        raise GankitError(f"{src}: none of the {len(report.skipped)} image files could be read "
                          f"(first: {name}: {reason}); see {out / REPORT_NAME}")
    if not report.crops:
        small = f" ({report.small_faces} smaller than --min-face {min_face:g} px ignored)" if report.small_faces else ""
        raise GankitError(f"{src}: no face found in any of the {report.photos} photos{small}; "
                          f"the list is in {out / REPORT_NAME}")
    return report


def _one_photo(models, name, photo, stem, out, report, *, size, largest, min_face, angles, threshold,
               pil_format, ext) -> None:
    faces = detect_faces(models, photo, min_face=min_face, angles=angles, threshold=threshold)
    big = [f for f in faces if f.box >= min_face]
    report.small_faces += len(faces) - len(big)
    if largest and len(big) > 1:
        report.extra_faces += len(big) - 1
        big = big[:1]
    image = Image.fromarray(photo)
    written = 0
    for i, face in enumerate(big):
        quad = face.quad()
        try:
            crop = crop_quad(image, quad, size)
        except ValueError:
            continue
        rel = f"{stem}_{i}{ext}"
        (out / rel).parent.mkdir(parents=True, exist_ok=True)
        for extra in range(2, 1000):
            try:
                with open(out / rel, "xb") as f:  # exclusive: never overwrite
                    crop.save(f, format=pil_format, **({"quality": 95} if pil_format == "JPEG" else {}))
                break
            except FileExistsError:  # names that collide anyway (a.jpg, a.png and a_jpg.png)
                rel = f"{stem}_{i}-{extra}{ext}"
        el, er = face.eyes
        report.crops.append({"file": rel, "source": name, "face": i, "box": round(face.box, 1),
                             "score": round(face.score, 3), "turn": face.angle, "eyes": [_r(el), _r(er)],
                             "mouth": _r(face.mouth), "quad": _r(quad)})
        written += 1
    if written:
        report.photos_with_faces += 1
    else:
        report.no_face.append(name)
