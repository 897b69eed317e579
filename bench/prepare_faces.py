"""How often ``gankit prepare faces`` finds and aligns the face: the numbers of docs/prepare-faces.md.

Synthetic photos made from FairFace (``../shared/data/fairface``: 224 px crops already aligned by
dlib's get_face_chip): each face scaled (0.5-2x, log-uniform), turned (+-30 degrees), feathered
into a larger canvas (640-1024 x 480-800: a photo from natural_photos / photos_extra without
people, smooth noise or a gradient), a third of the photos with two faces, a quarter saved with
an EXIF orientation tag (3, 6 or 8) and their pixels turned to match, all as JPEG (quality 90);
plus photos with no face. Ground truth: the 68-point predictor's eye centres and mouth on the
untouched crop (a different model from the 5-point one under test), carried through the same
scale, turn and shift.

1. **End to end**: :func:`gankit.data.faces.prepare_faces` with its defaults over the folder.
   A crop counts as a hit when its eye midpoint lies within half an eye distance of a pasted
   face's; other crops are false detections. Alignment of each hit, measured with the true eyes
   mapped into the crop: the eye line's angle, the eye midpoint's offset from where FFHQ's square
   from the true landmarks puts it (fraction of the crop side), the square's side against that one.
2. **Variants** from one pass that keeps every hit (threshold -0.5, all turns, 5- and 68-point
   landmarks): detection rate and false detections by turns and threshold; alignment with the
   estimated mouth, the 68-point mouth, a fixed mouth, and dlib's get_face_chip.
3. **Mouth estimate** (``--calibrate``): the least-squares fit of gankit.data.faces.MOUTH_FIT on
   faces 1001-2000, its residuals and its effect on the crop square on faces 1-1000.
4. Optional: dlib's CNN detector (``--cnn N`` photos) and OpenCV's Haar cascade (angle 0, when
   opencv-python-headless 4.x is installed) for detection rate and speed.

Writes ``bench/results/prepare_faces.json`` and ``docs/images/prepare_faces.png``.

    python bench/prepare_faces.py --photos 200 --empty 20 --cnn 12 --calibrate
"""

from __future__ import annotations

import argparse
import io
import json
import math
import os
import platform
import random
import shutil
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from PIL import Image, ImageFilter, ImageOps

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared" / "data"
FAIRFACE = SHARED / "fairface"
BACKGROUNDS = [SHARED / "natural_photos" / n for n in ("chelsea.png", "coffee.png", "kodim03.png")] + \
    [SHARED / "photos_extra" / n for n in ("brick.png", "china.jpg", "flower.jpg", "grass.png", "gravel.png",
                                            "hubble_deep_field.jpg", "rocket.jpg")]  # no people in these
SIZE = 256

sys.path.insert(0, str(ROOT / "src"))
from gankit.data import faces as F  # noqa: E402


def environment() -> dict:
    import dlib

    cpu = ""
    try:
        cpu = next(l.split(":", 1)[1].strip() for l in open("/proc/cpuinfo") if l.startswith("model name"))
    except (OSError, StopIteration):
        pass
    return {"date": time.strftime("%Y-%m-%d"), "python": platform.python_version(), "dlib": dlib.__version__,
            "cpu": cpu, "cpu_count": os.cpu_count(),
            "note": "2 shared cores; other developers' jobs ran at the same time, so times are upper bounds"}


# --------------------------------------------------------------------------- ground truth on the crops

class Truth:
    """68-point eyes and mouth (and the 5 points) on the untouched FairFace crops."""

    def __init__(self):
        import dlib

        self.dlib = dlib
        folder = F.models_dir()
        self.det = dlib.get_frontal_face_detector()
        self.sp5 = dlib.shape_predictor(str(folder / "shape_predictor_5_face_landmarks.dat"))
        self.sp68 = dlib.shape_predictor(str(folder / "shape_predictor_68_face_landmarks.dat"))
        self.cache: dict[int, dict] = {}
        self.fixed_box = 0

    def __call__(self, i: int) -> dict:
        if i not in self.cache:
            a = np.asarray(Image.open(FAIRFACE / "val" / f"{i}.jpg").convert("RGB"))
            rects = self.det(a, 0)
            if len(rects):
                rect = max(rects, key=lambda r: r.area())
            else:  # get_face_chip with padding 0.25 puts every face in about this box
                rect = self.dlib.rectangle(15, 15, 201, 201)
                self.fixed_box += 1
            p68 = F._points(self.sp68(a, rect))
            p5 = F._points(self.sp5(a, rect))
            self.cache[i] = {"eyes": (p68[36:42].mean(0), p68[42:48].mean(0)), "mouth": (p68[48] + p68[54]) / 2,
                             "p5": p5, "detected": bool(len(rects))}
        return self.cache[i]


def calibrate(truth: Truth) -> dict:
    """Fit mouth = f(nose) in the eye frame on faces 1001-2000; test on 1-1000."""
    def frame(rows):
        out = []
        for t in rows:
            el, er = t["p5"][2:4].mean(0), t["p5"][0:2].mean(0)
            mid, d, u, v = F.eye_frame(el, er)
            nq, mq = t["p5"][4] - mid, t["mouth"] - mid
            out.append((nq @ u / d, nq @ v / d, mq @ u / d, mq @ v / d))
        return np.array(out)

    fit_rows = [truth(i) for i in range(1001, 2001)]
    fit = frame(fit_rows)
    cu = np.polyfit(fit[:, 0], fit[:, 2], 1)
    cv = np.polyfit(fit[:, 1], fit[:, 3], 1)
    coef = (float(cu[1]), float(cu[0]), float(cv[1]), float(cv[0]))
    test_rows = [truth(i) for i in range(1, 1001)]
    test = frame(test_rows)
    models = {"fitted": coef, "shipped": F.MOUTH_FIT,
              "fixed": (0.0, 0.0, float(np.mean(fit[:, 3])), 0.0)}  # straight below the eyes, no nose
    result = {"fit_faces": "1001-2000", "test_faces": "1-1000", "fitted_coefficients": [round(c, 3) for c in coef],
              "shipped": list(F.MOUTH_FIT), "mouth_v_mean": round(float(np.mean(fit[:, 3])), 3),
              "crops_where_hog_missed_the_face": truth.fixed_box}
    for name, c in models.items():
        pu = c[0] + c[1] * test[:, 0]
        pv = c[2] + c[3] * test[:, 1]
        centre, side, angle = [], [], []
        for t, u_, v_ in zip(test_rows, pu, pv):
            el, er = t["p5"][2:4].mean(0), t["p5"][0:2].mean(0)
            mid, d, u, v = F.eye_frame(el, er)
            est = mid + d * (u_ * u + v_ * v)
            q_est, q_true = F.ffhq_quad(el, er, est), F.ffhq_quad(el, er, t["mouth"])
            s_true = np.linalg.norm(q_true[3] - q_true[0])
            centre.append(np.linalg.norm(q_est.mean(0) - q_true.mean(0)) / s_true)
            side.append(np.linalg.norm(q_est[3] - q_est[0]) / s_true)
            angle.append(abs(F.eye_angle(q_est[0], q_est[3]) - F.eye_angle(q_true[0], q_true[3])))
        result[name] = {
            "residual_u_std": round(float(np.std(test[:, 2] - pu)), 4),
            "residual_v_std": round(float(np.std(test[:, 3] - pv)), 4),
            "square_centre_offset_mean": round(float(np.mean(centre)), 4),
            "square_centre_offset_p95": round(float(np.percentile(centre, 95)), 4),
            "square_side_ratio_mean": round(float(np.mean(side)), 4),
            "square_side_ratio_std": round(float(np.std(side)), 4),
            "square_angle_diff_mean_deg": round(float(np.mean(angle)), 3),
            "square_angle_diff_p95_deg": round(float(np.percentile(angle, 95)), 3),
        }
    return result


# --------------------------------------------------------------------------- synthetic photos

def _background(rng: random.Random, w: int, h: int) -> Image.Image:
    kind = rng.random()
    if kind < 0.6:
        bg = Image.open(rng.choice(BACKGROUNDS)).convert("RGB")
        s = max(w / bg.width, h / bg.height) * rng.uniform(1.0, 1.4)
        bg = bg.resize((math.ceil(bg.width * s), math.ceil(bg.height * s)), Image.Resampling.BICUBIC)
        x, y = rng.randint(0, bg.width - w), rng.randint(0, bg.height - h)
        return bg.crop((x, y, x + w, y + h))
    nrng = np.random.default_rng(rng.randrange(2**32))
    if kind < 0.8:  # smooth colour noise
        small = nrng.integers(0, 256, (rng.randint(3, 9), rng.randint(3, 9), 3), dtype=np.uint8)
        return Image.fromarray(small).resize((w, h), Image.Resampling.BICUBIC)
    a, b = nrng.integers(0, 256, 3), nrng.integers(0, 256, 3)
    t = np.linspace(0, 1, w)[None, :, None] * 0.6 + np.linspace(0, 1, h)[:, None, None] * 0.4
    return Image.fromarray((a + (b - a) * t).astype(np.uint8))


def _paste(canvas: Image.Image, face: Image.Image, scale: float, angle: float, rng: random.Random,
           taken: list[tuple[int, int, int, int]]):
    """Paste ``face`` scaled and turned at a free random place; returns the map from crop
    coordinates to canvas coordinates (M, t) or None when no place is free."""
    n = max(8, round(face.width * scale))
    patch = face.resize((n, n), Image.Resampling.LANCZOS)
    k = n / face.width
    mask = Image.new("L", (n, n), 255)
    turned, m, t = F.turn_image(patch, angle)
    tmask, _, _ = F.turn_image(mask, angle)
    feather = max(1.0, n * 0.03)
    tmask = Image.fromarray((np.asarray(tmask.filter(ImageFilter.GaussianBlur(feather))) *
                             (np.asarray(tmask) > 0)).astype(np.uint8))
    w, h = turned.size
    if w >= canvas.width or h >= canvas.height:
        return None
    for _ in range(100):
        x, y = rng.randint(0, canvas.width - w), rng.randint(0, canvas.height - h)
        box = (x, y, x + w, y + h)
        if all(box[2] <= b[0] or b[2] <= box[0] or box[3] <= b[1] or b[3] <= box[1] for b in taken):
            canvas.paste(turned, (x, y), tmask)
            taken.append(box)
            return m * k, t + np.array([x, y])
    return None


EXIF_STORE = {3: Image.Transpose.ROTATE_180, 6: Image.Transpose.ROTATE_90, 8: Image.Transpose.ROTATE_270}


def make_photos(folder: Path, n_faces_photos: int, n_empty: int, seed: int, truth: Truth) -> list[dict]:
    rng = random.Random(seed)
    folder.mkdir(parents=True, exist_ok=True)
    records = []
    for p in range(n_faces_photos + n_empty):
        w, h = rng.randint(640, 1024), rng.randint(480, 800)
        canvas = _background(rng, w, h)
        want = 0 if p >= n_faces_photos else (2 if rng.random() < 1 / 3 else 1)
        taken: list = []
        faces = []
        for _ in range(want):
            idx = rng.randint(1, 1000)
            scale = math.exp(rng.uniform(math.log(0.5), math.log(2.0)))
            angle = rng.uniform(-30, 30)
            placed = _paste(canvas, Image.open(FAIRFACE / "val" / f"{idx}.jpg").convert("RGB"), scale, angle, rng, taken)
            if placed is None:
                continue
            m, t = placed
            gt = truth(idx)
            to_canvas = lambda q: m @ np.asarray(q) + t  # noqa: E731
            faces.append({"fairface": idx, "scale": round(scale, 3), "turn": round(angle, 2),
                          "eyes": [to_canvas(gt["eyes"][0]), to_canvas(gt["eyes"][1])],
                          "mouth": to_canvas(gt["mouth"]), "crop_detected_by_hog": gt["detected"]})
        orientation = rng.choice([3, 6, 8]) if rng.random() < 0.25 else 1
        name = f"photo_{p:03d}.jpg"
        stored = canvas.transpose(EXIF_STORE[orientation]) if orientation != 1 else canvas
        exif = Image.Exif()
        if orientation != 1:
            exif[0x0112] = orientation
        stored.save(folder / name, quality=90, exif=exif.tobytes())
        if orientation != 1 and not any(r["exif"] != 1 for r in records):  # check the first one
            back = ImageOps.exif_transpose(Image.open(folder / name))
            assert back.size == canvas.size, "EXIF orientation does not give the canvas back"
        records.append({"file": name, "size": [w, h], "exif": orientation, "faces": faces})
    return records


# --------------------------------------------------------------------------- scoring

def _match(eyes, truths: list[dict]):
    """Index of the pasted face whose eye midpoint is within half its eye distance, or None."""
    mid = (np.asarray(eyes[0]) + np.asarray(eyes[1])) / 2
    best, best_d = None, None
    for j, t in enumerate(truths):
        tm = (t["eyes"][0] + t["eyes"][1]) / 2
        d = float(np.linalg.norm(mid - tm))
        if d < 0.5 * float(np.linalg.norm(t["eyes"][1] - t["eyes"][0])) and (best_d is None or d < best_d):
            best, best_d = j, d
    return best


def _alignment(quad, t: dict) -> dict:
    """Where the true eyes land in the crop cut along ``quad`` vs the crop from the true landmarks."""
    ideal = F.ffhq_quad(t["eyes"][0], t["eyes"][1], t["mouth"])
    mine, ref = F.quad_to_crop(quad, SIZE), F.quad_to_crop(ideal, SIZE)
    el, er = F.apply_affine(mine, t["eyes"])
    il, ir = F.apply_affine(ref, t["eyes"])
    return {"angle": F.eye_angle(el, er), "ideal_angle": F.eye_angle(il, ir),
            "mid_error": float(np.linalg.norm((el + er) / 2 - (il + ir) / 2)) / SIZE,
            "side_ratio": float(np.linalg.norm(quad[3] - quad[0]) / np.linalg.norm(ideal[3] - ideal[0])),
            "mid": ((el + er) / 2 / SIZE).tolist(), "eye_dist": float(np.linalg.norm(er - el)) / SIZE}


def _summary(rows: list[dict]) -> dict:
    if not rows:
        return {"n": 0}
    ang = np.abs([r["angle"] for r in rows])
    err = np.array([r["mid_error"] for r in rows])
    side = np.array([r["side_ratio"] for r in rows])
    mid = np.array([r["mid"] for r in rows])
    dist = np.array([r["eye_dist"] for r in rows])
    return {
        "n": len(rows),
        "eye_angle_abs_mean_deg": round(float(ang.mean()), 2), "eye_angle_abs_median_deg": round(float(np.median(ang)), 2),
        "eye_angle_abs_p95_deg": round(float(np.percentile(ang, 95)), 2),
        "eye_angle_over_5deg": int((ang > 5).sum()),
        "eye_mid_error_mean": round(float(err.mean()), 4), "eye_mid_error_p95": round(float(np.percentile(err, 95)), 4),
        "side_ratio_mean": round(float(side.mean()), 3), "side_ratio_std": round(float(side.std()), 3),
        "eye_mid_mean": [round(float(v), 3) for v in mid.mean(0)], "eye_mid_std": [round(float(v), 4) for v in mid.std(0)],
        "eye_dist_mean": round(float(dist.mean()), 3), "eye_dist_std": round(float(dist.std()), 4),
        "eye_mid_scatter_in_eye_distances": round(float(np.linalg.norm(mid.std(0)) / dist.mean()), 3),
    }


def end_to_end(photos: Path, records: list[dict], out: Path) -> tuple[dict, dict]:
    started = time.perf_counter()
    report = F.prepare_faces(photos, out, SIZE, progress=False)
    seconds = time.perf_counter() - started
    by_photo = {r["file"]: r for r in records}
    found, false, rows = set(), [], []
    for crop in report.crops:
        rec = by_photo[crop["source"]]
        j = _match(crop["eyes"], rec["faces"])
        if j is None or (crop["source"], j) in found:
            false.append(crop["file"])
            continue
        found.add((crop["source"], j))
        rows.append(_alignment(np.array(crop["quad"]), rec["faces"][j]))
    pasted = sum(len(r["faces"]) for r in records)
    turned = [(r["file"], j) for r in records for j, f in enumerate(r["faces"]) if abs(f["turn"]) > 15]
    exif = [(r["file"], j) for r in records if r["exif"] != 1 for j in range(len(r["faces"]))]
    small = [(r["file"], j) for r in records for j, f in enumerate(r["faces"]) if f["scale"] < 0.8]
    hog_ok = [(r["file"], j) for r in records for j, f in enumerate(r["faces"]) if f["crop_detected_by_hog"]]
    rate = lambda keys: round(len(found & set(keys)) / max(len(keys), 1), 3)  # noqa: E731
    result = {
        "settings": report.settings,
        "photos": len(records), "photos_without_faces": sum(not r["faces"] for r in records),
        "faces_pasted": pasted, "faces_found": len(found), "detection_rate": round(len(found) / pasted, 3),
        "detection_rate_turned_over_15deg": rate(turned), "faces_turned_over_15deg": len(turned),
        "detection_rate_exif_rotated": rate(exif), "faces_in_exif_rotated_photos": len(exif),
        "detection_rate_scale_under_0.8": rate(small), "faces_scale_under_0.8": len(small),
        "detection_rate_where_hog_finds_the_untouched_crop": rate(hog_ok), "faces_whose_crop_hog_finds": len(hog_ok),
        "false_detections": len(false), "false_detection_files": false,
        "photos_listed_without_face": len(report.no_face),
        "seconds_total": round(seconds, 1), "seconds_per_photo": round(seconds / len(records), 3),
        "alignment": _summary(rows),
    }
    return result, report.to_json()


class Both:
    """A predictor answering 5 + 68 points at once (bench only: one detection pass, two landmark sets)."""

    def __init__(self, sp5, sp68):
        self.sp5, self.sp68 = sp5, sp68

    def __call__(self, arr, rect):
        a, b = self.sp5(arr, rect), self.sp68(arr, rect)

        class Shape:
            def parts(self_inner):
                return list(a.parts()) + list(b.parts())
        return Shape()


def _roll(face: F.Face) -> float:
    """How far the eye line is from level in the turned copy the hit was found in (turning a
    picture counter-clockwise by a lowers its eye-line angle by a)."""
    r = F.eye_angle(*face.eyes) - face.angle
    return abs((r + 180) % 360 - 180)


def variants(photos: Path, records: list[dict], truth: Truth, detector: str = "hog", limit: int | None = None,
             cache: Path | None = None, reuse: bool = False) -> dict:
    """Every hit kept once (threshold -0.5, all turns, 5 + 68 points; cached in ``cache``), then
    scored under several rules for keeping a hit."""
    import pickle

    import dlib

    recs = records[:limit] if limit else records
    if cache is not None and cache.is_file() and reuse:
        raw_rows, seconds = pickle.loads(cache.read_bytes())
    else:
        base = F.load_models(detector, 5)
        models = F.FaceModels(base.dlib, base.detector, detector, Both(truth.sp5, truth.sp68), 73)
        raw_rows = []
        started = time.perf_counter()
        for rec in recs:
            photo = np.asarray(ImageOps.exif_transpose(Image.open(photos / rec["file"])).convert("RGB"))
            for f in F.find_candidates(models, photo, threshold=-0.5):
                raw_rows.append((rec["file"], f.landmarks, f.box, f.score, f.angle))
        seconds = time.perf_counter() - started
        if cache is not None:
            cache.write_bytes(pickle.dumps((raw_rows, seconds)))
    raw = [(name, F.Face(pts[:5], box, score, angle), pts[5:]) for name, pts, box, score, angle in raw_rows]

    def run(angles, keep, align=None):
        by_photo: dict[str, list] = {}
        for name, g, p68 in raw:
            if g.angle in angles and keep(g):
                by_photo.setdefault(name, []).append((g, p68))
        found, false, rows = set(), 0, []
        for rec in recs:
            cands = by_photo.get(rec["file"], [])
            kept = F.merge_faces([g for g, _ in cands])
            full = {id(g): p68 for g, p68 in cands}
            for g in kept:
                if g.box < 64:
                    continue
                j = _match(g.eyes, rec["faces"])
                if j is None or (rec["file"], j) in found:
                    false += 1
                    continue
                found.add((rec["file"], j))
                t = rec["faces"][j]
                if align is None:
                    continue
                if align == "ffhq5":
                    quad = g.quad()
                elif align == "ffhq68":
                    p68 = full[id(g)]
                    quad = F.ffhq_quad(p68[36:42].mean(0), p68[42:48].mean(0), (p68[48] + p68[54]) / 2)
                elif align == "fixed_mouth":
                    el, er = g.eyes
                    mid, d, u, v = F.eye_frame(el, er)
                    quad = F.ffhq_quad(el, er, mid + 1.10 * d * v)  # the mean of --calibrate
                else:  # dlib's get_face_chip with its default padding; eyes found by rendering dots
                    photo = np.asarray(ImageOps.exif_transpose(Image.open(photos / rec["file"])).convert("RGB"))
                    rows.append(_chip_alignment(dlib, g, photo, t))
                    continue
                rows.append(_alignment(quad, t))
        pasted = sum(len(r["faces"]) for r in recs)
        out = {"faces_found": len(found), "detection_rate": round(len(found) / max(pasted, 1), 3),
               "false_detections": false}
        if align is not None:
            out["alignment"] = _summary(rows)
        return out

    result = {"detector": detector, "photos": len(recs), "faces_pasted": sum(len(r["faces"]) for r in recs),
              "seconds_per_photo_detect_all_turns_two_predictors": round(seconds / len(recs), 3)}
    if detector == "cnn":
        result["cnn"] = run({0.0}, lambda g: True, "ffhq5")
        return result
    allturns = set(F.DEFAULT_ANGLES)
    turn_sets = {"0": {0.0}, "0,+-15": {0.0, -15.0, 15.0}, "0,+-15,+-35": allturns}
    rules = {f"score>={th}" + ("" if roll is None else f", roll<={roll}"): (lambda g, th=th, roll=roll:
             g.score >= th and (roll is None or _roll(g) <= roll))
             for th in (0.0, -0.15, -0.3, -0.5) for roll in (None, 30)}
    rules["score>=-0.3 unturned, >=0 turned"] = lambda g: g.score >= (-0.3 if g.angle == 0 else 0.0)
    result["by_turns_and_rule"] = {f"turns={tn} {rn}": run(ts, rule) for tn, ts in turn_sets.items()
                                   for rn, rule in rules.items()}
    default = lambda g: g.score >= F.DEFAULT_THRESHOLD  # noqa: E731
    result["alignment_methods"] = {
        "ffhq_5point_estimated_mouth (default)": run(allturns, default, "ffhq5")["alignment"],
        "ffhq_68point_mouth": run(allturns, default, "ffhq68")["alignment"],
        "ffhq_5point_fixed_mouth": run(allturns, default, "fixed_mouth")["alignment"],
        "dlib_get_face_chip_padding_0.2": run(allturns, default, "chip")["alignment"],
    }
    return result


def _chip_alignment(dlib, face: F.Face, photo: np.ndarray, t: dict) -> dict:
    h, w = photo.shape[:2]
    pts = dlib.points([dlib.point(int(round(x - 0.5)), int(round(y - 0.5))) for x, y in face.landmarks])
    half = face.box / 2
    mid = face.landmarks.mean(0)
    rect = dlib.rectangle(int(mid[0] - half), int(mid[1] - half), int(mid[0] + half), int(mid[1] + half))
    details = dlib.get_face_chip_details(dlib.full_object_detection(rect, pts), SIZE, 0.2)
    where = []
    for eye in t["eyes"]:
        dot = np.zeros((h, w), np.uint8)
        x, y = int(eye[0]), int(eye[1])
        dot[max(y - 1, 0):y + 2, max(x - 1, 0):x + 2] = 255
        chip = dlib.extract_image_chip(dot, details).astype(float)
        ys, xs = np.nonzero(chip)
        wgt = chip[ys, xs]
        where.append(np.array([(xs + 0.5) @ wgt / wgt.sum(), (ys + 0.5) @ wgt / wgt.sum()]) if wgt.sum() else np.zeros(2))
    el, er = where
    return {"angle": F.eye_angle(el, er), "ideal_angle": 0.0, "mid_error": float("nan"), "side_ratio": float("nan"),
            "mid": ((el + er) / 2 / SIZE).tolist(), "eye_dist": float(np.linalg.norm(er - el)) / SIZE}


def haar(photos: Path, records: list[dict]) -> dict | None:
    try:
        import cv2
    except ImportError:
        return None
    path = Path(cv2.data.haarcascades) / "haarcascade_frontalface_default.xml"
    if not path.is_file():
        return None
    cascade = cv2.CascadeClassifier(str(path))
    found, false = 0, 0
    started = time.perf_counter()
    for rec in records:
        photo = np.asarray(ImageOps.exif_transpose(Image.open(photos / rec["file"])).convert("L"))
        boxes = cascade.detectMultiScale(photo, scaleFactor=1.1, minNeighbors=5, minSize=(64, 64))
        hit = set()
        for (x, y, w, h) in boxes:
            c = np.array([x + w / 2, y + h / 2])
            js = [j for j, f in enumerate(rec["faces"]) if np.linalg.norm(c - (f["eyes"][0] + f["eyes"][1]) / 2)
                  < 0.6 * np.linalg.norm(f["eyes"][1] - f["eyes"][0]) and j not in hit]
            if js:
                hit.add(js[0])
            else:
                false += 1
        found += len(hit)
    pasted = sum(len(r["faces"]) for r in records)
    return {"opencv": cv2.__version__, "cascade": path.name, "turns": [0], "faces_found": found,
            "detection_rate": round(found / pasted, 3), "false_detections": false,
            "seconds_per_photo": round((time.perf_counter() - started) / len(records), 3),
            "note": "detection only (box centre within 0.6 eye distances of the eyes' midpoint); no landmarks"}


# --------------------------------------------------------------------------- picture

def picture(photos: Path, out: Path, records: list[dict], report: dict, false: list[str], path: Path,
            n: int = 4) -> None:
    """Photos (as displayed) beside their crops: two with two faces, one EXIF-rotated, turned faces;
    only photos whose faces were all found and whose crops are all faces."""
    crops_by = {}
    for c in report["crops"]:
        crops_by.setdefault(c["source"], []).append(c)
    good = [r for r in records if r["faces"] and len(crops_by.get(r["file"], [])) == len(r["faces"])
            and not any(c["file"] in false for c in crops_by[r["file"]])]
    chosen = [r for r in good if len(r["faces"]) == 2][:2]
    chosen += [r for r in good if r["exif"] != 1 and r not in chosen][:1]
    chosen += [r for r in good if abs(r["faces"][0]["turn"]) > 20 and r not in chosen][:n - len(chosen)]
    th, cs, gap = 160, 160, 5
    rows = []
    for r in chosen:
        im = ImageOps.exif_transpose(Image.open(photos / r["file"])).convert("RGB")
        im = im.resize((round(im.width * th / im.height), th), Image.Resampling.LANCZOS)
        tiles = [im] + [Image.open(out / c["file"]).convert("RGB").resize((cs, cs), Image.Resampling.LANCZOS)
                        for c in crops_by[r["file"]][:2]]
        rows.append(tiles)
    if not rows:
        print("no photo with all its faces found: no picture written")
        return
    width = max(sum(t.width for t in row) + gap * (len(row) - 1) for row in rows)
    sheet = Image.new("RGB", (width, len(rows) * th + gap * (len(rows) - 1)), (255, 255, 255))
    y = 0
    for row in rows:
        x = 0
        for t in row:
            sheet.paste(t, (x, y))
            x += t.width + gap
        y += th + gap
    path.parent.mkdir(parents=True, exist_ok=True)
    while True:  # under 300 KB: smaller, never fewer colours
        buf = io.BytesIO()
        sheet.save(buf, format="PNG", optimize=True)
        if buf.tell() < 290_000:
            break
        sheet = sheet.resize((round(sheet.width * 0.9), round(sheet.height * 0.9)), Image.Resampling.LANCZOS)
    path.write_bytes(buf.getvalue())


# --------------------------------------------------------------------------- main

def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--photos", type=int, default=200, help="photos with faces")
    ap.add_argument("--empty", type=int, default=20, help="photos without a face")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--cnn", type=int, default=0, help="also run dlib's CNN detector on the first N photos")
    ap.add_argument("--calibrate", action="store_true", help="fit and test the mouth estimate")
    ap.add_argument("--work", type=Path, default=None, help="folder for the photos and crops (default: a temporary one)")
    ap.add_argument("--json", type=Path, default=ROOT / "bench" / "results" / "prepare_faces.json")
    ap.add_argument("--image", type=Path, default=ROOT / "docs" / "images" / "prepare_faces.png")
    ap.add_argument("--reuse-candidates", action="store_true",
                    help="score the variants from the hits cached in --work by an earlier run (same photos)")
    args = ap.parse_args()

    work = args.work or Path(tempfile.mkdtemp(prefix="gankit-prepare-faces-"))
    if (work / "crops").exists():
        shutil.rmtree(work / "crops")
    truth = Truth()
    result: dict = {"environment": environment(), "size": SIZE,
                    "settings": {"photos_with_faces": args.photos, "photos_without": args.empty, "seed": args.seed,
                                 "canvas": "640-1024 x 480-800", "scale": "0.5-2 (log-uniform) of the 224 px crop",
                                 "turn_deg": "-30..30", "two_faces": "1/3 of photos", "exif": "1/4 of photos (3, 6, 8)",
                                 "faces_from": "FairFace val 1-1000"}}
    if args.calibrate:
        t0 = time.perf_counter()
        result["mouth_estimate"] = calibrate(truth)
        print(f"calibrated in {time.perf_counter() - t0:.0f}s: {json.dumps(result['mouth_estimate'])}", flush=True)
    records = make_photos(work / "photos", args.photos, args.empty, args.seed, truth)
    print(f"{len(records)} photos in {work / 'photos'}", flush=True)
    e2e, report = end_to_end(work / "photos", records, work / "crops")
    result["end_to_end"] = e2e
    print(json.dumps({k: v for k, v in e2e.items() if k != "false_detection_files"}, indent=1), flush=True)
    picture(work / "photos", work / "crops", records, report, e2e["false_detection_files"], args.image)
    hog_cache = work / "candidates_hog.pkl"
    result["variants"] = variants(work / "photos", records, truth, cache=hog_cache, reuse=args.reuse_candidates)
    print(json.dumps(result["variants"], indent=1), flush=True)
    if args.cnn:
        result["cnn"] = variants(work / "photos", records, truth, detector="cnn", limit=args.cnn,
                                 cache=work / f"candidates_cnn_{args.cnn}.pkl", reuse=args.reuse_candidates)
        same = variants(work / "photos", records, truth, limit=args.cnn, cache=hog_cache, reuse=True)
        result["cnn"]["hog_default_on_the_same_photos"] = same["by_turns_and_rule"][
            f"turns=0,+-15,+-35 score>={F.DEFAULT_THRESHOLD}"]
        print(json.dumps(result["cnn"], indent=1), flush=True)
    h = haar(work / "photos", records)
    if h:
        result["opencv_haar"] = h
        print(json.dumps(h, indent=1), flush=True)
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(result, indent=1) + "\n")
    print(f"wrote {args.json} and {args.image}")


if __name__ == "__main__":
    main()
