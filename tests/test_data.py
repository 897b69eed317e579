"""Behaviour of gankit.data: built-ins, messy image folders, zips, errors and the disk cache.

All image fixtures are generated in tmp_path; nothing binary is committed.
"""

from __future__ import annotations

import io
import os
import struct
import zipfile
import zlib
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from gankit.data import (BUILTIN_NAMES, MIXTURE_STD, Dataset, describe_builtins, load_dataset,
                         mixture_centers)
from gankit.data import images as images_mod
from gankit.errors import GankitError

MNIST_COUNTS = [980, 1135, 1032, 1010, 982, 892, 958, 1028, 974, 1009]


# --------------------------------------------------------------------------- helpers

def save(path: Path, im: Image.Image, **kw) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    im.save(path, **kw)
    return path


def solid(colour, size=(10, 10), mode="RGB") -> Image.Image:
    return Image.new(mode, size, colour)


def noise(seed: int, size=(10, 10)) -> Image.Image:
    rng = np.random.default_rng(seed)
    return Image.fromarray(rng.integers(0, 256, (size[1], size[0], 3), dtype=np.uint8))


def png_bytes(im: Image.Image) -> bytes:
    buf = io.BytesIO()
    im.save(buf, "PNG")
    return buf.getvalue()


def bomb_png() -> bytes:
    """A 60-byte PNG whose header declares 100,000 x 100,000 1-bit pixels."""
    def chunk(tag: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + tag + data + struct.pack(">I", zlib.crc32(tag + data))
    ihdr = struct.pack(">IIBBBBB", 100_000, 100_000, 1, 0, 0, 0, 0)
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(b""))
            + chunk(b"IEND", b""))


def load_one(tmp_path: Path, im: Image.Image, name="x.png", **kw) -> Dataset:
    folder = tmp_path / f"one_{len(list(tmp_path.iterdir()))}"
    save(folder / name, im, **{k: v for k, v in kw.items() if k in ("exif",)})
    options = {k: v for k, v in kw.items() if k != "exif"}
    return load_dataset(str(folder), cache_dir=False, **options)


# --------------------------------------------------------------------------- built-ins

def test_mnist_builtin():
    ds = load_dataset("mnist", resolution=32)
    assert len(ds) == 10_000 and ds.kind == "image"
    assert ds.data.dtype == torch.uint8 and ds.shape == (1, 32, 32)
    assert ds.labels.dtype == torch.int64
    assert torch.bincount(ds.labels).tolist() == MNIST_COUNTS
    assert ds.classes == [str(d) for d in range(10)] and ds.num_classes == 10
    assert ds.summary() == "mnist: 10,000 images 1x32x32, 10 classes"
    assert ds.data.float().mean() > 20  # actual digits, not blank


def test_mnist_options_and_copies():
    native = load_dataset("mnist")
    assert native.shape == (1, 28, 28)
    assert load_dataset("MNIST", channels=3).shape == (3, 28, 28)
    small = load_dataset("mnist", max_images=100, resolution=32)
    assert len(small) == 100
    assert torch.equal(small.labels, native.labels[:100])
    small.data.zero_()  # callers may normalise in place without corrupting the memo
    assert load_dataset("mnist", max_images=100, resolution=32).data.float().mean() > 20


@pytest.mark.parametrize("name,k", [("ring8", 8), ("grid25", 25)])
def test_mixtures(name, k):
    ds = load_dataset(name)
    assert ds.kind == "points" and ds.data.shape == (100_000, 2)
    assert ds.data.dtype == torch.float32 and ds.shape == (2,)
    assert sorted(ds.labels.unique().tolist()) == list(range(k)) and ds.num_classes == k
    centers = torch.from_numpy(mixture_centers(name)).float()
    dist = (ds.data - centers[ds.labels]).norm(dim=1)
    assert dist.max() < 5 * MIXTURE_STD[name] * 1.5  # radial distance of a 2-D Gaussian
    assert (ds.data - centers[ds.labels]).abs().max() < 5 * MIXTURE_STD[name]
    again = load_dataset(name)
    assert torch.equal(ds.data, again.data) and torch.equal(ds.labels, again.labels)


def test_mixtures_are_pinned():
    """Same points on every machine: pin a few values of the fixed-seed draw."""
    ring = load_dataset("ring8")
    assert ring.labels[:3].tolist() == [3, 4, 1]
    assert ring.data[0].tolist() == pytest.approx([-1.4432257, 1.4585344], abs=1e-6)
    assert load_dataset("grid25").labels[:3].tolist() == [4, 15, 22]
    ring_c = mixture_centers("ring8")
    assert np.allclose(np.linalg.norm(ring_c, axis=1), 2.0)
    assert sorted(set(mixture_centers("grid25").ravel())) == [-4, -2, 0, 2, 4]
    assert MIXTURE_STD == {"ring8": 0.02, "grid25": 0.05}


def test_describe_builtins():
    info = describe_builtins()
    assert set(info) == set(BUILTIN_NAMES) >= {"mnist", "ring8", "grid25", "stacked-mnist"}
    assert all(isinstance(v, str) and v for v in info.values())


# --------------------------------------------------------------------------- messy folders

def make_messy_folder(root: Path) -> tuple[list[str], dict[str, str]]:
    """Every PIL mode the loader must handle, plus bad files; returns (good names, bad->reason)."""
    rgba = solid((0, 255, 0, 255), mode="RGBA")
    rgba.putpixel((0, 0), (10, 20, 30, 0))
    pal_t = solid((255, 0, 0)).quantize(4)
    pal_t.info["transparency"] = 0
    i16 = Image.fromarray(np.full((10, 10), 65535, dtype=np.uint16))
    good = {
        "l.png": (solid(100, mode="L"), {}),
        "la.png": (solid((50, 255), mode="LA"), {}),
        "rgb.jpg": (solid((200, 100, 50)), {}),
        "rgba.png": (rgba, {}),
        "p.gif": (solid((0, 0, 255)).quantize(8), {}),
        "p_transparent.png": (pal_t, {"transparency": 0}),
        "cmyk.tiff": (solid((0, 0, 0, 0), mode="CMYK"), {}),
        "i16.png": (i16, {}),
        "i32.tif": (Image.fromarray(np.full((10, 10), 1000, dtype=np.int32)), {}),
        "f.tif": (Image.fromarray(np.full((10, 10), 0.5, dtype=np.float32)), {}),
        "one.bmp": (solid(1, mode="1"), {}),
        "nested/deeper/UPPER.WEBP": (solid((9, 9, 9)), {"lossless": True}),
    }
    for name, (im, kw) in good.items():
        save(root / name, im, **kw)
    jpeg = io.BytesIO()
    noise(0, (32, 32)).save(jpeg, "JPEG")
    png = png_bytes(noise(1, (32, 32)))
    bad = {
        "corrupt.jpg": (jpeg.getvalue()[:20] + np.random.default_rng(0).bytes(300), "not a readable image"),
        "truncated.png": (png[: len(png) // 2], "truncated"),
        "zero.png": (b"", "empty file"),
        "text.jpg": (b"this is not a picture\n", "not a readable image"),
        "bomb.png": (bomb_png(), "decompression bomb"),
    }
    for name, (data, _) in bad.items():
        (root / name).write_bytes(data)
    (root / "notes.txt").write_text("ignored: not an image extension")
    save(root / ".hidden.png", solid((1, 2, 3)))
    save(root / ".git" / "objects.png", solid((1, 2, 3)))
    return sorted(good), {name: reason for name, (_, reason) in bad.items()}


def test_messy_folder_loads_good_and_skips_bad(tmp_path):
    good, bad = make_messy_folder(tmp_path / "messy")
    before = Image.MAX_IMAGE_PIXELS
    ds = load_dataset(str(tmp_path / "messy"), cache_dir=False)
    assert Image.MAX_IMAGE_PIXELS == before  # our limit is local to the load
    assert len(ds) == len(good) and ds.shape == (3, 10, 10) and ds.labels is None
    assert ds.source == str((tmp_path / "messy").resolve())
    skipped = dict(ds.skipped)
    assert sorted(skipped) == sorted(bad)
    for name, reason in bad.items():
        assert reason in skipped[name], (name, skipped[name])
    first3 = sorted(bad)[:3]
    assert f"(skipped 5 bad files: {', '.join(first3)}, ...)" in ds.summary()
    # spot-check the decoded values, in sorted-path order
    px = {name: ds.data[i, :, 5, 5].tolist() for i, name in enumerate(good)}
    assert px["cmyk.tiff"] == [255, 255, 255]
    assert px["i16.png"] == [255, 255, 255]
    assert px["f.tif"] == [128, 128, 128]
    assert px["one.bmp"] == [255, 255, 255]
    assert px["p_transparent.png"] == [255, 255, 255]
    assert px["l.png"] == [100, 100, 100]
    assert px["i32.tif"] == [4, 4, 4]  # mode I in 16-bit range: 1000 / 65535 * 255


def test_only_bad_files_is_an_error(tmp_path):
    (tmp_path / "a.png").write_bytes(b"")
    (tmp_path / "b.jpg").write_text("nope")
    with pytest.raises(GankitError, match=r"none of the 2 image files.*a\.png: empty file"):
        load_dataset(str(tmp_path), cache_dir=False)


def test_bomb_by_pixel_limit(tmp_path, monkeypatch):
    monkeypatch.setattr(images_mod, "MAX_PIXELS", 50 * 50)
    save(tmp_path / "big.png", solid((1, 2, 3), (100, 100)))
    save(tmp_path / "small.png", solid((1, 2, 3), (40, 40)))
    ds = load_dataset(str(tmp_path), cache_dir=False)
    assert len(ds) == 1 and ds.skipped[0][0] == "big.png"
    assert "decompression bomb" in ds.skipped[0][1]


# --------------------------------------------------------------------------- pixel conversion

def test_rgb_to_grey_and_grey_to_rgb(tmp_path):
    grey = load_one(tmp_path, solid((200, 100, 50)), channels=1)
    assert grey.shape == (1, 10, 10)
    assert grey.data[0, 0, 5, 5].item() == 124  # ITU-R 601: .299 R + .587 G + .114 B
    rgb = load_one(tmp_path, solid(77, mode="L"), channels=3)
    assert rgb.shape == (3, 10, 10) and (rgb.data == 77).all()
    auto = load_one(tmp_path, solid(77, mode="L"))
    assert auto.shape == (1, 10, 10)
    grey_palette = solid(77, mode="L").convert("P")
    assert load_one(tmp_path, grey_palette).shape == (1, 10, 10)


def test_alpha_composited_on_white(tmp_path):
    im = solid((0, 0, 0, 255), mode="RGBA")
    im.putpixel((0, 0), (10, 20, 30, 0))
    im.putpixel((1, 0), (0, 0, 0, 128))
    ds = load_one(tmp_path, im)
    assert ds.data[0, :, 0, 0].tolist() == [255, 255, 255]
    assert ds.data[0, :, 0, 1].tolist() == [127, 127, 127]
    assert ds.data[0, :, 5, 5].tolist() == [0, 0, 0]
    la = solid((0, 0), mode="LA")
    assert (load_one(tmp_path, la).data == 255).all()


def test_sixteen_bit_scaled_not_clipped(tmp_path):
    a = np.array([[0, 257, 32768, 65535]], dtype=np.uint16).repeat(4, axis=0)
    ds = load_one(tmp_path, Image.fromarray(a))
    assert ds.shape == (1, 4, 4)
    assert ds.data[0, 0, 0].tolist() == [0, 1, 128, 255]


def test_exif_orientation_applied(tmp_path):
    im = solid((255, 0, 0), (20, 10))
    exif = Image.Exif()
    exif[0x0112] = 6  # rotate 90 degrees clockwise for display
    ds = load_one(tmp_path, im, name="rot.jpg", exif=exif.tobytes())
    assert ds.shape == (3, 20, 10)


# --------------------------------------------------------------------------- resize + crop

def three_band_image(size, vertical=False) -> Image.Image:
    """Red | green | blue thirds (left to right, or top to bottom)."""
    w, h = size
    a = np.zeros((h, w, 3), dtype=np.uint8)
    n = h if vertical else w
    for band in range(3):
        sl = slice(band * n // 3, (band + 1) * n // 3)
        if vertical:
            a[sl, :, band] = 255
        else:
            a[:, sl, band] = 255
    return Image.fromarray(a)


@pytest.mark.parametrize("vertical", [False, True])
def test_resize_and_center_crop(tmp_path, vertical):
    size = (30, 90) if vertical else (90, 30)
    ds = load_one(tmp_path, three_band_image(size, vertical), resolution=16)
    assert ds.shape == (3, 16, 16)
    centre = ds.data[0, :, 2:14, 2:14]
    assert (centre[1] == 255).all() and (centre[0] == 0).all() and (centre[2] == 0).all()


def test_mixed_sizes_need_a_resolution(tmp_path):
    save(tmp_path / "a.png", solid((1, 2, 3), (10, 10)))
    save(tmp_path / "b.png", solid((1, 2, 3), (12, 8)))
    with pytest.raises(GankitError, match="different sizes.*resolution"):
        load_dataset(str(tmp_path), cache_dir=False)
    assert load_dataset(str(tmp_path), cache_dir=False, resolution=6).shape == (3, 6, 6)


# --------------------------------------------------------------------------- layouts

def make_class_folders(root: Path) -> None:
    save(root / "cat" / "a.png", noise(1))
    save(root / "cat" / "sub" / "b.png", noise(2))
    save(root / "dog" / "c.jpg", noise(3), quality=95)
    save(root / "emu" / "d.bmp", noise(4))
    (root / "empty").mkdir()
    (root / "README.txt").write_text("not an image")


def test_class_folders(tmp_path):
    make_class_folders(tmp_path / "cls")
    ds = load_dataset(str(tmp_path / "cls"), cache_dir=False)
    assert ds.classes == ["cat", "dog", "emu"] and ds.num_classes == 3
    assert ds.labels.tolist() == [0, 0, 1, 2]
    assert ds.summary().endswith("4 images 3x10x10, 3 classes")


def test_flat_folder_with_nested_subfolders(tmp_path):
    save(tmp_path / "top.png", noise(1))
    save(tmp_path / "a" / "x.png", noise(2))
    save(tmp_path / "b" / "c" / "y.png", noise(3))
    ds = load_dataset(str(tmp_path), cache_dir=False)
    assert len(ds) == 3 and ds.labels is None and ds.classes is None and ds.num_classes == 0
    single = tmp_path / "b"  # one subfolder only: not class folders
    assert load_dataset(str(single), cache_dir=False).labels is None


def test_symlink_loop_does_not_hang(tmp_path):
    save(tmp_path / "a" / "x.png", noise(1))
    os.symlink(tmp_path / "a", tmp_path / "a" / "loop")
    assert len(load_dataset(str(tmp_path), cache_dir=False)) == 1


def test_broken_links_are_skipped_not_fatal(tmp_path):
    """A link loop anywhere used to abort the whole load (ELOOP), and a dangling link named like an
    image vanished silently; both are now reported in ``skipped`` (issue 17, bench/fault_data.py)."""
    save(tmp_path / "good.png", noise(1))
    os.symlink(tmp_path / "gone.png", tmp_path / "dangling.png")
    os.symlink("self.png", tmp_path / "self.png")
    os.symlink("loop", tmp_path / "loop")  # not named like an image: ignored, but must not abort
    ds = load_dataset(str(tmp_path), cache_dir=False)
    assert len(ds) == 1
    assert dict(ds.skipped) == {"dangling.png": "unreadable (No such file or directory)",
                                "self.png": "unreadable (Too many levels of symbolic links)"}


def test_png_crc_error_in_pixel_data_is_skipped(tmp_path):
    """PIL does not check IDAT CRCs: changed pixel bytes that still inflate were trained on."""
    def chunk(tag: bytes, data: bytes, crc_of: bytes | None = None) -> bytes:
        crc = zlib.crc32(tag + (data if crc_of is None else crc_of))
        return struct.pack(">I", len(data)) + tag + data + struct.pack(">I", crc)
    rows = b"".join(b"\0" + bytes([i * 20] * 30) for i in range(10))  # 10x10 RGB, filter 0
    damaged = rows[:100] + bytes([rows[100] ^ 0x40]) + rows[101:]
    ihdr = chunk(b"IHDR", struct.pack(">IIBBBBB", 10, 10, 8, 2, 0, 0, 0))
    for name, idat in [("ok.png", chunk(b"IDAT", zlib.compress(rows))),
                       ("crc.png", chunk(b"IDAT", zlib.compress(damaged), crc_of=zlib.compress(rows)))]:
        (tmp_path / name).write_bytes(b"\x89PNG\r\n\x1a\n" + ihdr + idat + chunk(b"IEND", b""))
    assert Image.open(tmp_path / "crc.png").convert("RGB").size == (10, 10)  # PIL alone accepts it
    ds = load_dataset(str(tmp_path), cache_dir=False)
    assert len(ds) == 1 and ds.skipped == [("crc.png", "corrupt (CRC error in IDAT chunk)")]


def test_max_images_keeps_first_good_files(tmp_path):
    for i in range(5):
        save(tmp_path / f"{i}.png", solid((i, i, i)))
    (tmp_path / "1.png").write_bytes(b"")
    ds = load_dataset(str(tmp_path), cache_dir=False, max_images=3)
    assert ds.data[:, 0, 0, 0].tolist() == [0, 2, 3]
    assert ds.skipped == [("1.png", "empty file")]


def zip_folder(folder: Path, dest: Path, prefix: str = "") -> Path:
    with zipfile.ZipFile(dest, "w", zipfile.ZIP_DEFLATED) as zf:
        for p in sorted(folder.rglob("*")):
            if p.is_file():
                zf.write(p, prefix + p.relative_to(folder).as_posix())
        zf.writestr("__MACOSX/cat/._a.png", b"resource fork")
    return dest


@pytest.mark.parametrize("prefix", ["", "wrapped/"])
def test_zip_matches_folder(tmp_path, prefix):
    make_class_folders(tmp_path / "cls")
    folder = load_dataset(str(tmp_path / "cls"), cache_dir=False)
    zipped = load_dataset(str(zip_folder(tmp_path / "cls", tmp_path / "d.zip", prefix)),
                          cache_dir=False)
    assert torch.equal(folder.data, zipped.data)
    assert torch.equal(folder.labels, zipped.labels) and folder.classes == zipped.classes
    assert zipped.source == str((tmp_path / "d.zip").resolve())


def test_zip_bad_members_skipped(tmp_path, monkeypatch):
    monkeypatch.setattr(images_mod, "MAX_MEMBER_BYTES", 1000)
    with zipfile.ZipFile(tmp_path / "z.zip", "w", zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("ok.png", png_bytes(solid((1, 2, 3))))
        zf.writestr("huge.png", png_bytes(noise(0, (64, 64))))
        zf.writestr("bomb.png", bomb_png())
    ds = load_dataset(str(tmp_path / "z.zip"), cache_dir=False)
    assert len(ds) == 1
    reasons = dict(ds.skipped)
    assert "too large" in reasons["huge.png"] and "decompression bomb" in reasons["bomb.png"]


def test_thread_pool_gives_same_result(tmp_path, monkeypatch):
    for i in range(12):
        save(tmp_path / f"{i:02d}.jpg", noise(i, (40, 30)))
    serial = load_dataset(str(tmp_path), cache_dir=False, resolution=16)
    monkeypatch.setattr(images_mod, "POOL_MIN_FILES", 1)
    pooled = load_dataset(str(tmp_path), cache_dir=False, resolution=16)
    assert torch.equal(serial.data, pooled.data)


# --------------------------------------------------------------------------- errors

def test_errors_are_gankit_errors(tmp_path):
    with pytest.raises(GankitError, match=r"nowhere.*mnist, ring8, grid25"):
        load_dataset(str(tmp_path / "nowhere"))
    with pytest.raises(GankitError, match=r"mnistt.*mnist, ring8, grid25"):
        load_dataset("mnistt")
    (tmp_path / "empty").mkdir()
    (tmp_path / "empty" / "notes.txt").write_text("x")
    with pytest.raises(GankitError, match=r"empty: no image files"):
        load_dataset(str(tmp_path / "empty"))
    (tmp_path / "file.txt").write_text("x")
    with pytest.raises(GankitError, match=r"file\.txt: not a folder"):
        load_dataset(str(tmp_path / "file.txt"))
    (tmp_path / "broken.zip").write_text("not a zip")
    with pytest.raises(GankitError, match=r"broken\.zip: not a readable zip"):
        load_dataset(str(tmp_path / "broken.zip"))
    with pytest.raises(GankitError, match="channels"):
        load_dataset("mnist", channels=2)
    with pytest.raises(GankitError, match="resolution"):
        load_dataset("mnist", resolution=0)


# --------------------------------------------------------------------------- disk cache

def test_disk_cache_hit_and_invalidation(tmp_path, monkeypatch):
    data, cache = tmp_path / "imgs", tmp_path / "cache"
    make_class_folders(data)
    first = load_dataset(str(data), cache_dir=cache, resolution=8)
    assert len(list(cache.glob("*.safetensors"))) == 1 and len(list(cache.glob("*.json"))) == 1

    calls = []
    real = images_mod.decode_image
    monkeypatch.setattr(images_mod, "decode_image", lambda *a: calls.append(1) or real(*a))
    second = load_dataset(str(data), cache_dir=cache, resolution=8)
    assert calls == []
    assert torch.equal(first.data, second.data) and torch.equal(first.labels, second.labels)
    assert second.classes == first.classes and second.skipped == first.skipped

    load_dataset(str(data), cache_dir=cache, resolution=4)  # other options: other entry
    assert len(calls) == 4
    calls.clear()
    st = (data / "dog" / "c.jpg").stat()
    os.utime(data / "dog" / "c.jpg", ns=(st.st_atime_ns, st.st_mtime_ns + 10**9))
    load_dataset(str(data), cache_dir=cache, resolution=8)
    assert len(calls) == 4
    calls.clear()
    save(data / "dog" / "new.png", noise(9))
    assert len(load_dataset(str(data), cache_dir=cache, resolution=8)) == 5
    assert len(calls) == 5


def test_disk_cache_keeps_skipped_and_survives_corruption(tmp_path):
    (tmp_path / "d").mkdir()
    save(tmp_path / "d" / "a.png", noise(1))
    (tmp_path / "d" / "b.png").write_bytes(b"")
    cache = tmp_path / "cache"
    first = load_dataset(str(tmp_path / "d"), cache_dir=cache)
    for f in cache.glob("*.safetensors"):
        f.write_bytes(b"garbage")
    again = load_dataset(str(tmp_path / "d"), cache_dir=cache)
    assert torch.equal(first.data, again.data) and again.skipped == [("b.png", "empty file")]
    cached = load_dataset(str(tmp_path / "d"), cache_dir=cache)  # rewritten, readable again
    assert torch.equal(first.data, cached.data) and cached.skipped == first.skipped


def test_cache_dir_env_and_disable(tmp_path, monkeypatch):
    save(tmp_path / "d" / "a.png", noise(1))
    monkeypatch.setenv("GANKIT_CACHE_DIR", str(tmp_path / "envcache"))
    load_dataset(str(tmp_path / "d"))
    assert len(list((tmp_path / "envcache").glob("*.safetensors"))) == 1
    monkeypatch.setenv("GANKIT_CACHE_DIR", str(tmp_path / "other"))
    load_dataset(str(tmp_path / "d"), cache_dir=False)
    assert not (tmp_path / "other").exists()


# --------------------------------------------------------------------------- two-domain built-ins

@pytest.mark.parametrize("name", ["mnist-edges", "mnist-negative"])
def test_two_domain_builtins(name):
    """CoGAN's unpaired digit pairs, side by side (more in tests/families/test_cogan.py)."""
    assert name in BUILTIN_NAMES and "two-domain" in describe_builtins()[name]
    ds = load_dataset(f" {name.upper()} ", resolution=32, max_images=100)
    assert ds.kind == "image" and ds.shape == (1, 32, 64) and len(ds) == 100
    assert ds.summary() == f"{name}: 100 images 1x32x64, 10 classes"
    assert torch.equal(ds.labels, load_dataset("mnist", max_images=100).labels)  # the left digits'
    assert torch.equal(ds.data[..., :32], load_dataset("mnist", resolution=32, max_images=100).data)
    assert load_dataset(name).shape == (1, 28, 56)  # native size


def test_a_class_folder_with_no_readable_image_is_no_class(tmp_path):
    """A class whose files are all unreadable is left out (a conditional model would otherwise
    have a class it never saw), named in the summary, and the same from the cache."""
    make_class_folders(tmp_path / "cls")
    (tmp_path / "cls" / "fox").mkdir()
    (tmp_path / "cls" / "fox" / "broken.png").write_bytes(b"not a png")
    for cache_dir in (tmp_path / "cache", tmp_path / "cache"):  # decoded, then from the cache
        ds = load_dataset(str(tmp_path / "cls"), cache_dir=cache_dir)
        assert ds.classes == ["cat", "dog", "emu"] and ds.labels.tolist() == [0, 0, 1, 2]
        assert ds.summary().endswith("(skipped 1 bad file: fox/broken.png) (no image read in fox: not a class)")
    only = tmp_path / "two"
    save(only / "cat" / "a.png", noise(1))
    (only / "fox").mkdir(parents=True)
    (only / "fox" / "broken.png").write_bytes(b"not a png")
    ds = load_dataset(str(only), cache_dir=False)  # one class left: unlabelled data
    assert ds.classes is None and ds.labels is None and len(ds) == 1
