"""`gankit prepare faces`: the FFHQ alignment math, EXIF handling, the pipeline's files and report,
its errors (missing extra, empty folder, no face, existing output) and, when dlib is installed, real
faces from the built-in FairFace set pasted into a photo."""

from __future__ import annotations

import json
import math
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from gankit.data import faces as F
from gankit.errors import GankitError

ROOT = Path(__file__).resolve().parents[1]
FAIRFACE = ROOT / "src" / "gankit" / "data" / "builtin" / "fairface" / "val"


def _turned(points, degrees, centre=(0.0, 0.0), scale=1.0, shift=(0.0, 0.0)):
    a = math.radians(degrees)
    m = np.array([[math.cos(a), math.sin(a)], [-math.sin(a), math.cos(a)]]) * scale
    return (np.asarray(points, float) - centre) @ m.T + centre + shift


# --------------------------------------------------------------------------- pure geometry (no dlib)

@pytest.mark.parametrize("degrees,scale,shift", [(0, 1, (0, 0)), (-37, 0.4, (900, 20)), (25, 3.0, (-50, 400)),
                                                 (90, 1.7, (300, 300)), (178, 0.8, (10, 10))])
def test_ffhq_square_levels_a_turned_face_and_puts_it_in_the_same_place(degrees, scale, shift):
    upright = np.array([[-30.0, 0.0], [30.0, 0.0], [0.0, 64.0]])  # left eye, right eye, mouth
    el, er, mouth = _turned(upright, degrees, scale=scale, shift=shift)
    quad = F.ffhq_quad(el, er, mouth)
    side = np.linalg.norm(quad[3] - quad[0])
    assert side == pytest.approx(2 * max(2 * 60, 1.8 * 64) * scale)
    assert np.linalg.norm(quad[1] - quad[0]) == pytest.approx(side)  # a square
    crop = F.apply_affine(F.quad_to_crop(quad, 256), [el, er, mouth])
    assert F.eye_angle(crop[0], crop[1]) == pytest.approx(0, abs=1e-6)
    # the same spot of the crop whatever the turn, scale and place: the alignment's whole point
    ref = F.apply_affine(F.quad_to_crop(F.ffhq_quad(*upright), 256), upright)
    np.testing.assert_allclose(crop, ref, atol=1e-6)
    assert (crop[0, 0] + crop[1, 0]) / 2 == pytest.approx(128)  # centred left-right
    assert crop[0, 1] < 128 < crop[2, 1]  # eyes above the centre, mouth below


def test_a_crooked_mouth_tilts_the_square_half_as_much_as_it_is_off():
    el, er = np.array([-30.0, 0]), np.array([30.0, 0])
    quad = F.ffhq_quad(el, er, np.array([12.0, 60]))  # mouth 11.3 degrees off the perpendicular
    tilt = F.eye_angle(quad[0], quad[3])
    assert 0 < -tilt < math.degrees(math.atan2(12, 60))  # FFHQ averages the eye line and the mouth line


def test_estimate_mouth_follows_the_face_when_it_turns():
    el, er, nose = np.array([40.0, 50]), np.array([100.0, 50]), np.array([70.0, 95])  # nose 0.75 eye distances down
    mouth = F.estimate_mouth(el, er, nose)
    u0, u1, v0, v1 = F.MOUTH_FIT
    assert mouth == pytest.approx([70 + 60 * u0, 50 + 60 * (v0 + v1 * 0.75)])
    assert 1.0 < (mouth[1] - 50) / 60 < 1.1  # about one eye distance below the eyes
    turned = _turned([el, er, nose, mouth], 33, centre=(70, 70), scale=2)
    np.testing.assert_allclose(F.estimate_mouth(*turned[:3]), turned[3], atol=1e-9)


def test_turn_image_and_crop_quad_put_pixels_where_the_matrices_say():
    a = np.zeros((100, 160, 3), np.uint8)
    a[20:24, 30:34] = 255  # a dot centred at (32, 22)
    for degrees in (15, -35, 90):
        turned, m, t = F.turn_image(Image.fromarray(a), degrees)
        assert _centroid(np.asarray(turned)) == pytest.approx(m @ [32, 22] + t, abs=0.2)
    quad = np.array([[20, 0], [20, 100], [120, 100], [120, 0]], float)
    for size in (40, 256):  # shrinking (supersampled) and enlarging (bicubic)
        crop = np.asarray(F.crop_quad(Image.fromarray(a), quad, size))
        assert _centroid(crop) == pytest.approx(F.apply_affine(F.quad_to_crop(quad, size), [32, 22]), abs=0.3)


def test_the_area_outside_the_photo_is_filled_without_mirrored_content():
    a = np.full((200, 200, 3), 90, np.uint8)
    a[90:110, 4:24] = 255  # a bright patch 4 px from the left edge
    quad = np.array([[-150, 0], [-150, 200], [50, 200], [50, 0]], float)  # three quarters outside
    crop = np.asarray(F.crop_quad(Image.fromarray(a), quad, 200)).astype(int)
    assert crop[:, 160:175].max() > 240  # the patch itself
    assert crop[:, :140].max() < 200  # no reflection of it in the fill (edge + blur)
    assert crop.shape == (200, 200, 3)


def _centroid(a: np.ndarray, mask: np.ndarray | None = None) -> np.ndarray:
    w = a[..., 0].astype(float) if mask is None else mask.astype(float)
    ys, xs = np.nonzero(w > (w.max() / 4 if mask is None else 0))
    wt = w[ys, xs]
    return np.array([(xs + 0.5) @ wt / wt.sum(), (ys + 0.5) @ wt / wt.sum()])


# --------------------------------------------------------------------------- the pipeline with a stand-in detector

FACE_COLOURS = [((255, 0, 0), (0, 255, 0), (0, 0, 255)),  # left eye, right eye, nose of face 0
                ((255, 255, 0), (255, 0, 255), (0, 255, 255))]


def _marker_face(draw: np.ndarray, which: int, centre, eye_dist: float, degrees: float) -> None:
    """Three coloured dots where a face's eyes and nose would be, turned by ``degrees``."""
    pts = _turned([[-eye_dist / 2, 0], [eye_dist / 2, 0], [0, 0.75 * eye_dist]], degrees) + centre
    r = max(2, int(eye_dist / 15))
    for (x, y), colour in zip(pts, FACE_COLOURS[which]):
        draw[int(y) - r:int(y) + r + 1, int(x) - r:int(x) + r + 1] = colour


def _colour_mask(a: np.ndarray, colour) -> np.ndarray:
    c = np.asarray(colour)
    return (np.abs(a.astype(int) - c).max(-1) < 70)


def _fake_detect(models, photo, *, min_face, angles, threshold):
    """Stands in for dlib: finds the coloured dots and returns 5-point landmarks around them."""
    found = []
    for colours in FACE_COLOURS:
        masks = [_colour_mask(photo, c) for c in colours]
        if not all(m.sum() >= 4 for m in masks):
            continue
        el, er, nose = (_centroid(photo, m) for m in masks)
        along = (er - el) * 0.12
        pts = np.array([er + along, er - along, el - along, el + along, nose])
        found.append(F.Face(pts, box=float(np.linalg.norm(er - el)) * 2.5, score=1.0))
    return sorted(found, key=lambda f: -f.box)


@pytest.fixture
def fake_dlib(monkeypatch):
    monkeypatch.setattr(F, "load_models", lambda detector="hog", landmarks=5: None)
    monkeypatch.setattr(F, "detect_faces", _fake_detect)


def _photo(path: Path, faces=(), size=(400, 300), orientation: int = 1) -> None:
    """Save a photo (JPEG, or PNG) with marker faces given as (which, centre, eye_dist, degrees) as
    displayed; with an EXIF orientation the stored pixels are turned so a viewer shows them upright."""
    a = np.full((size[1], size[0], 3), 128, np.uint8)
    for face in faces:
        _marker_face(a, *face)
    im = Image.fromarray(a)
    store = {1: None, 3: Image.Transpose.ROTATE_180, 6: Image.Transpose.ROTATE_90, 8: Image.Transpose.ROTATE_270}
    if store[orientation] is not None:
        im = im.transpose(store[orientation])
    exif = Image.Exif()
    if orientation != 1:
        exif[0x0112] = orientation
    path.parent.mkdir(parents=True, exist_ok=True)
    im.save(path, quality=100, exif=exif.tobytes()) if path.suffix == ".jpg" else im.save(path)


def _eyes_in(crop_path: Path, which: int = 0):
    a = np.asarray(Image.open(crop_path).convert("RGB"))
    return [_centroid(a, _colour_mask(a, c)) for c in FACE_COLOURS[which][:2]]


def test_pipeline_writes_one_level_crop_per_face_lists_faceless_photos_and_skips_bad_files(tmp_path, fake_dlib):
    src = tmp_path / "photos"
    _photo(src / "two.jpg", [(0, (120, 150), 40, 20), (1, (300, 140), 30, -25)])
    _photo(src / "sub" / "tilted.png", [(0, (200, 150), 50, -28)])
    _photo(src / "empty.jpg")
    _photo(src / "tiny.jpg", [(0, (200, 150), 8, 0)])  # a 20 px face: under --min-face
    (src / "broken.jpg").write_bytes(b"not a jpeg")
    report = F.prepare_faces(src, tmp_path / "out", 64, progress=False)
    out = tmp_path / "out"
    assert sorted(p.relative_to(out).as_posix() for p in out.rglob("*.png")) == ["sub/tilted_0.png", "two_0.png",
                                                                                 "two_1.png"]
    assert report.photos == 4 and report.photos_with_faces == 2 and len(report.crops) == 3
    assert report.no_face == ["empty.jpg", "tiny.jpg"] and report.small_faces == 1
    assert [name for name, _ in report.skipped] == ["broken.jpg"]
    saved = json.loads((out / "report.json").read_text())
    assert saved["faces"] == 3 and saved["no_face"] == ["empty.jpg", "tiny.jpg"] and saved["skipped_count"] == 1
    assert saved["crops"][0]["source"] == "sub/tilted.png" and len(saved["crops"][0]["quad"]) == 4
    for name, which in (("two_0.png", 0), ("two_1.png", 1), ("sub/tilted_0.png", 0)):
        assert Image.open(out / name).size == (64, 64)
        el, er = _eyes_in(out / name, which)
        assert abs(F.eye_angle(el, er)) < 3, name  # level, whatever the turn in the photo
        assert abs((el[0] + er[0]) / 2 - 32) < 1.5, name  # centred
        assert el[1] < 32  # eyes in the upper half


def test_largest_keeps_one_face_and_jpeg_format(tmp_path, fake_dlib):
    src = tmp_path / "p"
    _photo(src / "a.jpg", [(0, (120, 150), 40, 0), (1, (300, 140), 30, 0)])
    _photo(src / "a.png", [(1, (200, 150), 30, 0)])  # same stem: the names keep the extension
    _photo(src / "a_jpg.png", [(1, (200, 150), 30, 0)])  # ... which collides with this one's: numbered
    report = F.prepare_faces(src, tmp_path / "o", 48, largest=True, fmt="jpg", progress=False)
    assert sorted(p.name for p in (tmp_path / "o").iterdir()) == ["a_jpg_0-2.jpg", "a_jpg_0.jpg", "a_png_0.jpg",
                                                                  "report.json"]
    assert report.extra_faces == 1


@pytest.mark.parametrize("orientation", [3, 6, 8])
def test_exif_orientation_is_applied_before_detection(tmp_path, fake_dlib, orientation):
    _photo(tmp_path / "in" / "phone.jpg", [(0, (150, 110), 40, 0)], size=(300, 220), orientation=orientation)
    report = F.prepare_faces(tmp_path / "in", tmp_path / "out", 64, progress=False)
    el, er = report.crops[0]["eyes"]
    assert el == pytest.approx([130, 110], abs=2) and er == pytest.approx([170, 110], abs=2)  # displayed coordinates
    el, er = _eyes_in(tmp_path / "out" / "phone_0.png")
    assert abs(F.eye_angle(el, er)) < 3 and el[0] < er[0]  # level and the right way up


def test_existing_output_is_never_overwritten(tmp_path, fake_dlib):
    _photo(tmp_path / "in" / "a.jpg", [(0, (150, 110), 40, 0)])
    out = tmp_path / "out"
    out.mkdir()
    (out / "a_0.png").write_bytes(b"keep me")
    with pytest.raises(GankitError, match="not empty"):
        F.prepare_faces(tmp_path / "in", out, 64, progress=False)
    assert (out / "a_0.png").read_bytes() == b"keep me"


def test_empty_folder_and_faceless_folder_fail_with_a_report(tmp_path, fake_dlib):
    (tmp_path / "empty").mkdir()
    with pytest.raises(GankitError, match="no image files"):
        F.prepare_faces(tmp_path / "empty", tmp_path / "o1", 64, progress=False)
    assert json.loads((tmp_path / "o1" / "report.json").read_text())["photos"] == 0
    for i in range(3):
        _photo(tmp_path / "plain" / f"{i}.jpg")
    with pytest.raises(GankitError, match="no face found in any of the 3 photos"):
        F.prepare_faces(tmp_path / "plain", tmp_path / "o2", 64, progress=False)
    assert json.loads((tmp_path / "o2" / "report.json").read_text())["no_face"] == ["0.jpg", "1.jpg", "2.jpg"]


def test_bad_options_are_one_line_errors(tmp_path):
    (tmp_path / "in").mkdir()
    for kwargs, words in (({"size": 8}, "--size"), ({"fmt": "gif"}, "--format"), ({"min_face": 0}, "--min-face")):
        with pytest.raises(GankitError, match=words):
            F.prepare_faces(tmp_path / "in", tmp_path / "o", **kwargs)
    with pytest.raises(GankitError, match="not found"):
        F.prepare_faces(tmp_path / "nothing", tmp_path / "o")


# --------------------------------------------------------------------------- the faces extra missing

def test_missing_extra_says_how_to_install_it(tmp_path, monkeypatch, capsys):
    monkeypatch.setitem(sys.modules, "dlib", None)  # `import dlib` now raises ImportError
    F.load_models.cache_clear()
    try:
        with pytest.raises(GankitError) as err:
            F.load_models()
        assert str(err.value) == F.EXTRA_HINT == "face preparation needs the faces extra: pip install 'gankit[faces]'"
        _photo(tmp_path / "in" / "a.jpg")
        from gankit import cli

        with pytest.raises(SystemExit) as done:
            cli.main(["prepare", "faces", str(tmp_path / "in"), "--out", str(tmp_path / "out"), "-q"])
        assert done.value.code == 2
        err_text = capsys.readouterr().err.strip()
        assert err_text == f"error: {F.EXTRA_HINT}"
        assert not (tmp_path / "out").exists()  # nothing written before the check
    finally:
        F.load_models.cache_clear()


def test_missing_models_package_says_how_to_install_it(monkeypatch):
    import importlib.util

    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec",
                        lambda name, *a: None if name == "face_recognition_models" else real(name, *a))
    with pytest.raises(GankitError, match=r"pip install 'gankit\[faces\]'"):
        F.models_dir()


# --------------------------------------------------------------------------- the command line

def test_cli_folder_without_faces_ends_with_one_line_and_exit_2(tmp_path, cli):
    for i in range(2):
        Image.fromarray(np.tile(np.linspace(0, 255, 160, dtype=np.uint8), (120, 1))).save(tmp_path / f"g{i}.png")
    done = cli("prepare", "faces", tmp_path, "--out", tmp_path / "out", "-q", timeout=120)  # as a user runs it
    assert done.returncode == 2
    assert done.stderr.strip().count("\n") == 0, done.stderr
    if _has_dlib():
        assert "no face found in any of the 2 photos" in done.stderr
        assert json.loads((tmp_path / "out" / "report.json").read_text())["no_face"] == ["g0.png", "g1.png"]
    else:
        assert "pip install 'gankit[faces]'" in done.stderr


def _main(capsys, *args) -> tuple[int, str, str]:
    """``gankit ARGS`` in this process (a subprocess costs seconds of imports)."""
    from gankit import cli

    with pytest.raises(SystemExit) as done:
        cli.main([str(a) for a in args])
    captured = capsys.readouterr()
    return done.value.code, captured.out, captured.err


def test_cli_prints_counts_and_refuses_a_used_output_folder(tmp_path, fake_dlib, capsys):
    _photo(tmp_path / "in" / "a.jpg", [(0, (150, 110), 40, 0)])
    _photo(tmp_path / "in" / "b.jpg")
    (tmp_path / "in" / "c.jpg").write_bytes(b"")
    code, out, _ = _main(capsys, "prepare", "faces", tmp_path / "in", "--out", tmp_path / "out", "--size", "64", "-q")
    assert code in (0, None)
    assert "1 face crop (64x64) from 1 of 2 photos" in out
    assert "no face found in 1 photo: b.jpg" in out and "skipped 1 unreadable file: c.jpg (empty file)" in out
    code, _, err = _main(capsys, "prepare", "faces", tmp_path / "in", "--out", tmp_path / "out")
    assert code == 2 and err.strip().count("\n") == 0 and "not empty" in err
    code, out, _ = _main(capsys, "prepare", "faces", "--help")
    assert code == 0 and "--largest" in out and "--min-face" in out


# --------------------------------------------------------------------------- real faces (needs the faces extra)

def _has_dlib() -> bool:
    try:
        F.models_dir()
        import dlib  # noqa: F401
    except (GankitError, ImportError):
        return False
    return True


REAL_FACES = ("3.jpg", "4.jpg")  # built-in FairFace faces the HOG detector finds when pasted as below


@pytest.mark.skipif(not _has_dlib(), reason="needs the faces extra: pip install 'gankit[faces]'")
@pytest.mark.skipif(not all((FAIRFACE / n).is_file() for n in REAL_FACES),
                    reason=f"needs the built-in FairFace faces {REAL_FACES} in {FAIRFACE}")
def test_real_faces_in_an_exif_rotated_photo_come_out_level(tmp_path):
    models = F.load_models()
    canvas = Image.new("RGB", (640, 420), (70, 110, 90))
    truths = []
    for name, angle, at in ((REAL_FACES[0], 22, (40, 60)), (REAL_FACES[1], -8, (350, 90))):
        face = Image.open(FAIRFACE / name).convert("RGB").resize((192, 192), Image.Resampling.LANCZOS)
        found = F.detect_faces(models, np.asarray(face), angles=(0,))
        assert found, f"the detector misses the untouched {name}"
        turned, m, t = F.turn_image(face, angle, fill=(70, 110, 90))
        canvas.paste(turned, at)
        truths.append([m @ e + t + at for e in found[0].eyes])
    # stored turned, with the EXIF tag that turns it back (a phone held sideways)
    canvas.transpose(Image.Transpose.ROTATE_90).save(tmp_path / "in.jpg", quality=92,
                                                     exif=_orientation_exif(6))
    (tmp_path / "src").mkdir()
    (tmp_path / "in.jpg").rename(tmp_path / "src" / "group.jpg")
    report = F.prepare_faces(tmp_path / "src", tmp_path / "out", 128, progress=False)
    assert report.photos_with_faces == 1 and not report.no_face
    crops = json.loads((tmp_path / "out" / "report.json").read_text())["crops"]
    assert sorted(c["file"] for c in crops) == ["group_0.png", "group_1.png"]
    for crop in crops:
        mids = [np.linalg.norm((np.add(*truth) / 2) - np.add(*crop["eyes"]) / 2) for truth in truths]
        truth = truths[int(np.argmin(mids))]
        el, er = F.apply_affine(F.quad_to_crop(np.array(crop["quad"]), 128), truth)
        assert abs(F.eye_angle(el, er)) < 4, crop  # the pasted face's own eyes are level in its crop
        assert abs((el[0] + er[0]) / 2 - 64) < 5, crop  # and centred
        assert Image.open(tmp_path / "out" / crop["file"]).size == (128, 128)


def _orientation_exif(value: int) -> bytes:
    exif = Image.Exif()
    exif[0x0112] = value
    return exif.tobytes()
