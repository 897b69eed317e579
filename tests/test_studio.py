"""The studio's tools (gankit.studio.tools) and upload bounds, without a browser: each control's
function against the same computation through the Python API."""

import numpy as np
import pytest
import torch
from PIL import Image
from safetensors.torch import load_file

from gankit.data.images import image_batch
from gankit.errors import GankitError
from gankit.studio import tools
from gankit.studio.uploads import read_upload


@pytest.fixture(scope="module")
def served(studio_runs):
    return tools.load_models([studio_runs[n] for n in ("sg2", "cgan", "stargan", "srgan", "toon", "singan", "points")])


def picture(path, h=20, w=24, seed=0):
    rng = np.random.default_rng(seed)
    Image.fromarray(rng.integers(0, 256, (h, w, 3), dtype=np.uint8)).save(path)
    return path


def test_each_family_gets_its_tools(served):
    assert served["sg2"].capabilities() == ["sample", "walk", "arithmetic", "mix", "edit", "project"]
    assert served["cgan"].capabilities() == ["sample", "walk", "arithmetic"]
    assert served["stargan"].capabilities() == ["translate"]
    assert served["srgan"].capabilities() == ["upscale"]
    assert served["singan"].capabilities() == ["upscale", "sample", "harmonize", "paint"]
    assert served["points"].capabilities() == ["sample", "walk"]  # 2-D points: no arithmetic
    assert tools.sample(served["points"], n=64).image.ndim == 3  # a scatter plot


def test_sample_is_the_apis_sample_and_its_latent_downloads(served, tmp_path):
    m = served["sg2"]
    r = tools.sample(m, seed=5, n=4, truncation=0.5, folder=tmp_path)
    expected = m.model.sample(4, seed=5, truncation=0.5)
    assert np.array_equal(r.image, tools._picture(expected))
    assert [p.suffix for p in r.files] == [".png", ".safetensors"]
    assert np.array_equal(np.asarray(Image.open(r.files[0]).convert("RGB")), r.image)
    saved = load_file(r.files[1])
    assert torch.equal(saved["z"], m.model.latents(4, seed=5))
    assert torch.allclose(saved["w"], m.model.mapping(saved["z"], truncation=0.5), atol=1e-6)
    assert not np.array_equal(tools.sample(m, seed=5, n=4, truncation=1.0, folder=tmp_path).image, r.image)


def test_truncation_bounds_z_for_the_z_space_families(served, tmp_path):
    """The slider is the z bound for the others (was refused: the tool drew z first, then asked
    ``generate`` to truncate a given z)."""
    m = served["cgan"]
    r = tools.sample(m, seed=1, n=3, label="7", truncation=0.5, folder=tmp_path)
    assert np.array_equal(r.image, tools._picture(m.model.sample(3, seed=1, cond=7, truncation=0.5)))
    assert load_file(r.files[1])["z"].abs().max() <= 0.5
    assert not np.array_equal(r.image, tools.sample(m, seed=1, n=3, label="7", folder=tmp_path).image)
    assert tools.walk(m, seed=1, keyframes=2, frames=4, truncation=0.5, label="3", folder=tmp_path).video


def test_sample_by_class_name_or_index(served, tmp_path):
    m = served["cgan"]
    by_label = tools.sample(m, seed=1, n=3, label="7", folder=tmp_path).image
    assert np.array_equal(by_label, tools._picture(m.model.sample(3, seed=1, cond=7)))
    with pytest.raises(GankitError, match="class must be"):
        tools.sample(m, seed=1, n=3, label=12, folder=tmp_path)
    with pytest.raises(GankitError, match="samples must be between"):
        tools.sample(m, n=0, folder=tmp_path)
    for empty_box in (None, -1, 2.5):
        with pytest.raises(GankitError, match="seed must be a whole number"):
            tools.sample(m, seed=empty_box, folder=tmp_path)


def test_walk_writes_a_video_and_a_gif_of_every_frame(served, tmp_path):
    r = tools.walk(served["sg2"], seed=2, keyframes=3, frames=9, fps=6, folder=tmp_path)
    assert r.video.suffix == ".mp4" and r.video.stat().st_size > 0
    gif = Image.open(r.files[0])
    assert gif.n_frames == 9
    with pytest.raises(GankitError, match="at least 2 keyframes"):
        tools.walk(served["sg2"], keyframes=1, folder=tmp_path)


def test_mix_puts_the_second_seeds_styles_on_the_chosen_layers(served, tmp_path):
    from gankit.explore.styles import seed_latents

    m = served["sg2"]
    r = tools.mix(m, row_seed=0, col_seed=1, first=1, last=2, folder=tmp_path)
    ws = m.model.mapping(seed_latents(m.model, [0, 1]))
    mixed = ws[:1].clone()
    mixed[:, 1:3] = ws[1:, 1:3]
    assert torch.allclose(load_file(r.files[1])["w"], mixed, atol=1e-6)
    with torch.no_grad():
        expected = m.model.synthesis(torch.cat([ws, mixed])).clamp(-1, 1)
    assert np.abs(r.image.astype(int) - tools._picture(expected, nrow=3).astype(int)).max() <= 1
    with pytest.raises(GankitError, match="layers must satisfy"):
        tools.mix(m, first=3, last=1, folder=tmp_path)


def test_the_first_sefa_sliders_show_beside_many_directions_of_the_run():
    """A run with 22 directions of its own (age, 10 SeFa, 10 GANSpace files) showed only its first
    12 sliders, and not the built-in SeFa ones the page promises."""
    import types

    own = {"age": 0, **{f"sefa-run:{i}": 0 for i in range(10)}, **{f"ganspace:{i}": 0 for i in range(10)}}
    found = {**own, **{f"sefa:{i}": 0 for i in range(tools.EDIT_DIRECTIONS)}}
    fake = types.SimpleNamespace(directions=lambda: found)
    names = tools.Loaded.slider_directions(fake)
    assert len(names) == tools.MAX_EDIT_SLIDERS
    assert names[-tools.EDIT_DIRECTIONS:] == [f"sefa:{i}" for i in range(tools.EDIT_DIRECTIONS)]
    assert names[0] == "age"
    fake = types.SimpleNamespace(directions=lambda: {"age": 0, "sefa:0": 0, "sefa:1": 0})
    assert tools.Loaded.slider_directions(fake) == ["age", "sefa:0", "sefa:1"]


def test_edit_sliders_move_w_along_their_directions(served, tmp_path):
    m = served["sg2"]
    names = list(m.directions())
    assert names[:2] == ["sefa:0", "sefa:1"]
    still = tools.edit(m, {n: 0.0 for n in names}, seed=3, folder=tmp_path)
    r = m.model.config.resolution  # the grid: 2 px border, original, 2 px, edited, 2 px
    assert np.array_equal(still.image[2:2 + r, 2:2 + r], still.image[2:2 + r, 4 + r:4 + 2 * r])  # twins
    moved = tools.edit(m, {"sefa:0": 3.0}, seed=3, folder=tmp_path)
    assert moved.text == "seed 3: sefa:0 +3"
    vector, scale, _ = m.directions()["sefa:0"]
    w0 = load_file(still.files[1])["w"]
    assert torch.allclose(load_file(moved.files[1])["w"], w0 + 3.0 * scale * vector, atol=1e-5)
    with pytest.raises(GankitError, match="unknown direction"):
        tools.edit(m, {"smile": 1.0}, folder=tmp_path)


def test_translate_an_upload_with_attribute_toggles(served, tmp_path):
    m = served["stargan"]
    photo = picture(tmp_path / "in.png")
    names = tools.attribute_names(m)
    every = tools.translate(m, photo, folder=tmp_path)
    assert every.text == "input | " + " | ".join(f"flip {n}" for n in names)
    one = tools.translate(m, photo, attrs={names[0]: 1.0}, folder=tmp_path)
    x = image_batch(read_upload(photo, resolution=m.model.config.resolution))
    out = m.model.translate(x, attrs={names[0]: 1.0})
    assert np.array_equal(one.image, tools._picture(torch.cat([x.float() / 127.5 - 1, out]), nrow=2))
    assert one.text == f"input | {names[0]}=1"


def test_upscale_any_size_by_the_models_factor(served, tmp_path):
    r = tools.upscale(served["srgan"], picture(tmp_path / "low.png", 13, 21), folder=tmp_path)
    assert r.image.shape == (52, 84, 3) and r.text == "21x13 -> 84x52"


def test_arithmetic_is_the_figure_of_latent_arithmetic(served, tmp_path):
    from gankit.explore.arithmetic import latent_arithmetic

    m = served["cgan"]
    r = tools.arithmetic(m, "1,2", "3", "4-5", label="2", variations=2, folder=tmp_path)
    images, nrow = latent_arithmetic(m.model, [(1, [1, 2]), (-1, [3]), (1, [4, 5])], variations=2, cond=2).figure()
    assert np.array_equal(r.image, tools._picture(images, nrow=nrow))
    with pytest.raises(GankitError, match="class-conditional"):
        tools.arithmetic(m, "1", "2", "3", folder=tmp_path)
    with pytest.raises(GankitError, match="give seeds"):
        tools.arithmetic(served["sg2"], "one", "2", "3", folder=tmp_path)


def test_a_projected_photo_is_edited_and_toonified(served, tmp_path):
    from gankit.explore.blend import blend_models, blend_rows

    m, toon = served["sg2"], served["toon"]
    r, ws = tools.project(m, picture(tmp_path / "face.png"), steps=20, folder=tmp_path)
    assert ws.shape == (1, m.model.num_ws, m.model.generator.w_dim)
    assert torch.equal(load_file(r.files[1])["w"], ws)
    edited = tools.edit(m, {"sefa:1": 2.0}, w=ws, folder=tmp_path)
    assert edited.text == "your photo: sefa:1 +2"
    vector, scale, _ = m.directions()["sefa:1"]
    assert torch.allclose(load_file(edited.files[1])["w"], ws + 2.0 * scale * vector, atol=1e-5)
    blend = tools.toonify(m, toon, swap=8, w=ws, folder=tmp_path)
    rows = blend_rows([m.model, toon.model, blend_models(m.model, toon.model, 8)], ws)
    assert np.array_equal(blend.image, tools._picture(rows, nrow=3))
    with pytest.raises(GankitError, match="swap must be one of"):
        tools.toonify(m, toon, swap=5, folder=tmp_path)


def test_singan_harmonises_and_paints_uploads(served, tmp_path):
    from gankit.explore.singan import default_injection_scale

    m = served["singan"]
    h, w = m.model.generator.sizes[-1]
    k = default_injection_scale(m.model)
    photo, mask = picture(tmp_path / "pasted.png", h, w), tmp_path / "mask.png"
    Image.fromarray(np.pad(np.full((4, 4), 255, np.uint8), ((2, h - 6), (2, w - 6)))).save(mask)
    r = tools.harmonize(m, photo, mask, start_scale=k, folder=tmp_path)
    assert r.image.shape == (h + 4, 2 * w + 6, 3)  # input | output, 2 px borders
    assert tools.paint(m, photo, start_scale=k, folder=tmp_path).image.shape == (h, w, 3)
    Image.new("L", (w + 1, h)).save(mask)
    with pytest.raises(GankitError, match="same size"):
        tools.harmonize(m, photo, mask, start_scale=k, folder=tmp_path)


def test_run_page_is_the_report(served):
    assert "gankit report: sg2" in tools.run_page(served["sg2"])


# ---- uploads --------------------------------------------------------------------------------------
def test_uploads_are_bounded_and_bad_files_are_one_line(tmp_path):
    ok = picture(tmp_path / "ok.png", 30, 40)
    assert read_upload(ok).shape == (30, 40, 3)
    assert read_upload(ok, resolution=16).shape == (16, 16, 3)
    with pytest.raises(GankitError, match="up to 0 MB"):
        read_upload(ok, max_bytes=100)
    with pytest.raises(GankitError, match=r"40x30 pixels .* refused"):
        read_upload(ok, max_pixels=1000)
    (tmp_path / "junk.png").write_bytes(b"not a picture at all")
    with pytest.raises(GankitError, match="not a picture"):
        read_upload(tmp_path / "junk.png")
    with pytest.raises(GankitError, match="upload a picture first"):
        read_upload(None)


def test_a_decompression_bomb_is_refused_from_its_header(tmp_path):
    bomb = tmp_path / "bomb.png"
    Image.new("1", (20_000, 20_000)).save(bomb)  # 400 MP of zeros: a few kB on disk
    assert bomb.stat().st_size < 200_000
    with pytest.raises(GankitError, match="decompression bomb.*refused"):
        read_upload(bomb)
    big = tmp_path / "big.png"
    Image.new("1", (5_000, 4_000)).save(big)  # 20 MP: under PIL's bound, over the studio's
    with pytest.raises(GankitError, match="5000x4000 pixels .* refused"):
        read_upload(big)


# ---- gankit serve ---------------------------------------------------------------------------------
def test_serve_refuses_a_missing_run_with_one_line(gankit_main, tmp_path):
    code, out, err = gankit_main("serve", str(tmp_path / "nothing"))
    assert code == 2 and err.strip() == f"error: no such run or model directory: {tmp_path / 'nothing'}"


def test_serve_warns_off_localhost_and_launches_bounded(monkeypatch, tmp_path):
    from gankit.studio import app

    launched, lines = {}, []

    class FakeBlocks:
        studio_folder, studio_theme = tmp_path, None

        def launch(self, **kw):
            launched.update(kw)

    monkeypatch.setattr(tools, "load_models", lambda paths, device: {})
    monkeypatch.setattr(app, "build_app", lambda loaded, queue_size: FakeBlocks())
    app.serve(["r"], host="0.0.0.0", port=9000, warn=lines.append)
    assert len(lines) == 1 and "0.0.0.0" in lines[0] and "127.0.0.1" in lines[0]
    assert launched["server_name"] == "0.0.0.0" and launched["share"] is False
    assert launched["max_file_size"] == 20 * 2**20
    app.serve(["r"], warn=lines.append)
    assert len(lines) == 1 and launched["server_name"] == "127.0.0.1"  # no warning on the default
