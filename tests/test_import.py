"""gankit import / export --format rosinality / train --init (gankit.interop).

Numerical equality with the reference implementations themselves is measured by
bench/stylegan2_import.py (it needs their source checkouts); here: the real key layouts, exact
round trips, the restricted unpickler (the stored code never runs; other globals are refused), and
fine-tuning from imported weights."""

from __future__ import annotations

import argparse
import collections
import json
import pickle
import sys
import types
from pathlib import Path

import numpy as np
import pytest
import torch

import gankit
from gankit.errors import GankitError
from gankit.interop import layouts
from gankit.interop.stylegan2_io import build_networks, export_rosinality, import_stylegan2, read_checkpoint

FIXTURES = Path(__file__).parent / "fixtures"
TINY = dict(resolution=16, channels=3, nz=16, w_dim=16, map_layers=2, map_lr_mul=0.01, channel_base=64,
            channel_max=16, conv_clamp=256.0, mbstd_group=4)


def random_nets(values=TINY, seed=0):
    torch.manual_seed(seed)
    nets = build_networks(values)
    with torch.no_grad():
        for net in nets.values():
            for p in net.parameters():
                p.add_(torch.randn_like(p) * 0.3)
        nets["G"].mapping.w_avg.normal_()
    return {k: v.eval() for k, v in nets.items()}


def outputs(G, z, psi=0.7):
    with torch.no_grad():
        from gankit.nn.stylegan2 import truncate

        return G.synthesis(truncate(G.mapping(z, update_w_avg=False), G.mapping.w_avg, psi), "const")


# ---- rosinality -----------------------------------------------------------------------------------
def test_rosinality_export_has_rosinality_s_own_key_layout():
    """Names and shapes as rosinality's model.py gives them (recorded from its code at 64 px, z = w = 512,
    2 mapping layers, channel_multiplier=1: tests/fixtures/rosinality_layout_64.json)."""
    layout = json.loads((FIXTURES / "rosinality_layout_64.json").read_text())
    values = dict(TINY, resolution=64, nz=512, w_dim=512, channel_base=16384, channel_max=512, conv_clamp=0.0)
    nets = build_networks(values)
    model = types.SimpleNamespace(family="stylegan2", generator=nets["G"], config=None)
    with torch.no_grad():
        nets["G"].mapping.w_avg.normal_()
    doc = _export(model, nets["D"])
    assert {k: list(v.shape) for k, v in doc["g_ema"].items()} == layout["g_ema"]
    assert {k: list(v.shape) for k, v in doc["d"].items()} == layout["d"]
    assert torch.equal(doc["latent_avg"], nets["G"].mapping.w_avg)


def _export(model, D, path=None):
    import tempfile

    with tempfile.TemporaryDirectory() as tmp:
        out = export_rosinality(model, Path(path or tmp) / "x.pt", discriminator=D.state_dict())
        return torch.load(out, weights_only=True)


def test_rosinality_round_trip_is_exact(tmp_path):
    values = dict(TINY, conv_clamp=0.0, nz=16, w_dim=16)
    nets = random_nets(values)
    model = types.SimpleNamespace(family="stylegan2", generator=nets["G"], config=None)
    path = export_rosinality(model, tmp_path / "ckpt.pt", discriminator=nets["D"].state_dict())
    doc = torch.load(path, weights_only=True)
    doc["args"] = argparse.Namespace(size=16, lr_mlp=0.01, latent=16)  # as rosinality's train.py saves it
    doc["g"] = doc["g_ema"]
    doc["g_optim"] = {"state": {}, "param_groups": [{"lr": 0.002, "params": [0, 1]}]}
    torch.save(doc, path)
    summary = import_stylegan2(path, tmp_path / "imported")
    assert summary["format"] == "rosinality" and summary["discriminator"] and summary["map_layers"] == 2
    assert (summary["resolution"], summary["w_dim"], summary["channel_base"], summary["channel_max"]) == (16, 16, 64, 16)
    model2 = gankit.load(tmp_path / "imported")
    for k, v in nets["G"].state_dict().items():
        assert torch.equal(model2.generator.state_dict()[k], v), k
    z = torch.randn(3, 16)
    assert torch.equal(outputs(model2.generator, z), outputs(nets["G"], z))
    images = model2.generate(z, truncation=0.7, noise="const")
    assert torch.allclose(images, outputs(nets["G"], z).clamp(-1, 1), atol=1e-6)


def test_rosinality_training_checkpoint_without_latent_avg_estimates_the_mean_w(tmp_path):
    nets = random_nets(dict(TINY, conv_clamp=0.0))
    model = types.SimpleNamespace(family="stylegan2", generator=nets["G"], config=None)
    doc = _export(model, nets["D"], tmp_path)
    del doc["latent_avg"]
    torch.save(doc["g_ema"], tmp_path / "bare.pt")  # a bare generator state dict
    summary = gankit.import_model(tmp_path / "bare.pt", tmp_path / "out")
    assert any("estimated" in n for n in summary["notes"]) and not summary["discriminator"]
    G = gankit.load(tmp_path / "out").generator
    with torch.no_grad():
        mean = G.mapping(torch.randn(20000, 16), update_w_avg=False)[:, 0].mean(0)
    assert torch.allclose(G.mapping.w_avg, mean, atol=0.05 * float(mean.abs().max()))


def test_a_pt_with_code_in_it_is_refused(tmp_path, gankit_main):
    torch.save({"g_ema": {}, "evil": Evil()}, tmp_path / "bad.pt")
    code, out, err = gankit_main("import", tmp_path / "bad.pt", "--out", tmp_path / "o")
    assert code == 2 and err.startswith("error: refusing") and len(err.strip().splitlines()) == 1
    assert not (tmp_path / "o").exists()


# ---- NVlabs .pkl ------------------------------------------------------------------------------------
TRACE_SOURCE = "import os\nopen(os.environ['GANKIT_TEST_TRACE'], 'w').write('ran')\n"


def write_nvlabs_pickle(path: Path, nets: dict, source: str = TRACE_SOURCE) -> None:
    """A snapshot as torch_utils.persistence writes it: each module pickled as a call
    ``torch_utils.persistence._reconstruct_persistent_obj(meta)`` with its module source, class name
    and ``__dict__`` (parameters, buffers, submodules, layer attributes such as ``bias_gain`` and
    ``conv_clamp``, numpy scalars among them). Loading it with NVlabs' code runs ``source``."""
    persistence = types.ModuleType("torch_utils.persistence")

    def _reconstruct_persistent_obj(meta):  # what the real hook does first: execute the stored source
        exec(compile(meta["module_src"], "<stored>", "exec"), {})
        return meta["class_name"]

    _reconstruct_persistent_obj.__module__ = "torch_utils.persistence"
    _reconstruct_persistent_obj.__qualname__ = "_reconstruct_persistent_obj"
    persistence._reconstruct_persistent_obj = _reconstruct_persistent_obj
    sys.modules["torch_utils"] = types.ModuleType("torch_utils")
    sys.modules["torch_utils.persistence"] = persistence

    class Persistent:
        def __init__(self, module, extra=None):
            self.module, self.extra = module, extra or {}

        def __reduce__(self):
            m = self.module
            state = {"training": False, "_parameters": collections.OrderedDict(m._parameters),
                     "_buffers": collections.OrderedDict(m._buffers), "_non_persistent_buffers_set": set(),
                     "_modules": collections.OrderedDict((k, Persistent(c)) for k, c in m._modules.items()),
                     "_init_args": (), "_init_kwargs": {"note": "kwargs"}}
            state.update({k: v for k, v in vars(m).items() if isinstance(v, (int, float)) and not isinstance(v, bool)})
            if hasattr(m, "lr_mul"):  # NVlabs' FullyConnectedLayer: bias_gain = lr_multiplier, a numpy weight_gain
                state["bias_gain"] = m.lr_mul
                state["weight_gain"] = np.float64(m.weight_gain)
            if hasattr(m, "mbstd_group"):  # NVlabs' epilogue keeps the group size in a submodule
                state["_modules"]["mbstd"] = Persistent(torch.nn.Module(), {"group_size": m.mbstd_group})
            state.update(self.extra)
            meta = dict(type="class", version=4, module_src=source, class_name=type(m).__name__, state=state)
            return (_reconstruct_persistent_obj, (meta,))

    try:
        with open(path, "wb") as f:
            pickle.dump({k: Persistent(v) for k, v in nets.items()} | {"training_set_kwargs": {"resolution": 16}}, f)
    finally:
        del sys.modules["torch_utils.persistence"], sys.modules["torch_utils"]


def test_nvlabs_pickle_imports_exactly_and_runs_none_of_its_code(tmp_path, gankit_main, monkeypatch):
    nets = random_nets(dict(TINY, map_lr_mul=0.05))
    write_nvlabs_pickle(tmp_path / "snap.pkl", {"G": nets["G"], "D": nets["D"], "G_ema": nets["G"]})
    trace = tmp_path / "trace.txt"
    monkeypatch.setenv("GANKIT_TEST_TRACE", str(trace))
    code, out, err = gankit_main("import", tmp_path / "snap.pkl", "--out", tmp_path / "out")
    assert code == 0, err
    assert "imported nvlabs StyleGAN2 16x16" in out and "with its discriminator" in out
    assert not trace.exists()  # the stored source never ran
    config = json.loads((tmp_path / "out" / "config.json").read_text())
    assert config["config"]["map_lr_mul"] == 0.05 and config["config"]["conv_clamp"] == 256.0
    assert config["imported_from"]["mbstd_group"] == 4
    model = gankit.load(tmp_path / "out")
    z = torch.randn(2, 16)
    assert torch.equal(outputs(model.generator, z), outputs(nets["G"], z))
    code, out, err = gankit_main("info", tmp_path / "out")  # was "no checkpoint found"
    assert code == 0 and "snap.pkl (nvlabs)" in out and "steps      imported from" in out, err
    code, out, _ = gankit_main("sample", tmp_path / "out", "--n", "2", "--out", tmp_path / "s.png")
    assert code == 0 and "from stylegan2, imported)" in out  # was "at step None"
    # the control: loading the same file the way the reference code does runs the stored source
    write_nvlabs_pickle(tmp_path / "again.pkl", {"G_ema": nets["G"]})
    persistence = types.ModuleType("torch_utils.persistence")
    persistence._reconstruct_persistent_obj = lambda meta: exec(meta["module_src"], {})
    monkeypatch.setitem(sys.modules, "torch_utils", types.ModuleType("torch_utils"))
    monkeypatch.setitem(sys.modules, "torch_utils.persistence", persistence)
    with open(tmp_path / "again.pkl", "rb") as f:
        pickle.load(f)
    assert trace.read_text() == "ran"


class Evil:
    def __reduce__(self):
        import os

        return (os.system, ("echo pwned",))


def test_pickle_with_other_globals_is_refused_with_one_line(tmp_path, gankit_main):
    with open(tmp_path / "evil.pkl", "wb") as f:
        pickle.dump({"G_ema": Evil()}, f)
    code, out, err = gankit_main("import", tmp_path / "evil.pkl", "--out", tmp_path / "o")
    assert code == 2 and len(err.strip().splitlines()) == 1
    assert "refusing to load posix.system" in err and "pwned" not in out
    (tmp_path / "junk.pkl").write_bytes(b"\x80\x04not a pickle at all")
    code, out, err = gankit_main("import", tmp_path / "junk.pkl", "--out", tmp_path / "o2")
    assert code == 2 and err.startswith("error: cannot read")
    code, out, err = gankit_main("import", tmp_path / "missing.pt", "--out", tmp_path / "o3")
    assert code == 2 and "no such checkpoint file" in err
    (tmp_path / "bomb.pkl").write_bytes(b"\x80\x02ctorch\nFloatStorage\nq\x00J\x00\x00\x00\x40\x85q\x01Rq\x02.")
    code, out, err = gankit_main("import", tmp_path / "bomb.pkl", "--out", tmp_path / "o4")  # 4 GB from 36 bytes
    assert code == 2 and "more than the file holds" in err


def test_conditional_and_stylegan3_generators_are_refused():
    sd = {k: v for k, v in build_networks(TINY)["G"].state_dict().items()}
    with pytest.raises(GankitError, match="conditional"):
        layouts.generator_architecture({**sd, "mapping.embed.weight": torch.zeros(1)})
    with pytest.raises(GankitError, match="StyleGAN3"):
        layouts.generator_architecture({**sd, "synthesis.input.affine.weight": torch.zeros(1)})


def test_architecture_is_read_from_the_tensors():
    for values in (TINY, dict(TINY, resolution=32, channel_base=256, channel_max=32, map_layers=3, nz=8, w_dim=24)):
        arch = layouts.generator_architecture(build_networks(values)["G"].state_dict())
        assert (arch.resolution, arch.z_dim, arch.w_dim, arch.map_layers) == \
            (values["resolution"], values["nz"], values["w_dim"], values["map_layers"])
        widths = {r: min(arch.channel_base // r, arch.channel_max) for r in arch.resolutions}
        assert widths == {r: min(values["channel_base"] // r, values["channel_max"]) for r in arch.resolutions}


# ---- export from a run, and fine-tuning with --init -------------------------------------------------
@pytest.fixture(scope="module")
def run(tmp_path_factory):
    path = tmp_path_factory.mktemp("imp") / "run"
    gankit.train("stylegan2", data="mnist", out=path, preset="tiny", steps=2, quiet=True, overrides={"max_images": 64})
    return path


def test_export_rosinality_from_a_run_round_trips(run, tmp_path, gankit_main):
    code, out, err = gankit_main("export", run, "--out", tmp_path / "r.pt", "--format", "rosinality")
    assert code == 0, err
    doc = torch.load(tmp_path / "r.pt", weights_only=True)
    assert {"g_ema", "latent_avg", "d"} <= set(doc)
    code, out, err = gankit_main("import", tmp_path / "r.pt", "--out", tmp_path / "back")
    assert code == 0, err
    a, b = gankit.load(run), gankit.load(tmp_path / "back")
    z = torch.randn(2, a.latent_dim)
    # the run's conv_clamp (256) is not in a rosinality file; far below it the outputs are the same
    assert torch.allclose(a.generate(z, noise="const"), b.generate(z, noise="const"), atol=1e-6)
    code, out, err = gankit_main("export", run, "--out", tmp_path / "r.bin", "--format", "rosinality")
    assert code == 2 and "NAME.pt" in err
    code, out, err = gankit_main("export", run, "--out", tmp_path / "x", "--format", "onnx")
    assert code == 2 and "unknown export format" in err


def test_train_init_starts_from_the_imported_weights(run, tmp_path):
    gankit.api.export(run, tmp_path / "exp")
    # lr 0: after one step G and D still hold the starting weights (w_avg keeps tracking)
    tuned_dir = tmp_path / "tuned"
    gankit.train("stylegan2", data="mnist", out=tuned_dir, preset="tiny", steps=1, quiet=True, init=tmp_path / "exp",
                 overrides={"max_images": 64, "lr_g": 0.0, "lr_d": 0.0})
    _, _, start = gankit.api.read_networks(run)
    _, config, tuned = gankit.api.read_networks(tuned_dir)
    assert config.init == str(tmp_path / "exp")
    for k, v in start["G_ema"].items():
        if k != "mapping.w_avg":
            assert torch.equal(tuned["G"][k], v), k
    # an export holds no D: it starts fresh; from a run directory D comes too
    out2 = tmp_path / "tuned2"
    gankit.train("stylegan2", data="mnist", out=out2, preset="tiny", steps=1, quiet=True, init=run,
                 overrides={"max_images": 64, "lr_g": 0.0, "lr_d": 0.0})
    _, _, tuned2 = gankit.api.read_networks(out2)
    assert all(torch.equal(tuned2["D"][k], v) for k, v in start["D"].items())


def test_train_init_user_errors(run, tmp_path, gankit_main):
    code, out, err = gankit_main("train", "stylegan2", "--data", "mnist", "--out", tmp_path / "a", "--preset", "tiny", "--init", run,
            "--set", "w_dim=32")
    assert code == 2 and "contradicts the --init model's w_dim=16" in err
    code, out, err = gankit_main("train", "dcgan", "--data", "mnist", "--out", tmp_path / "b", "--preset", "tiny", "--init", run)
    assert code == 2 and "not supported for dcgan" in err
    code, out, err = gankit_main("train", "stylegan2", "--data", "mnist", "--out", tmp_path / "c", "--init", tmp_path / "nothing")
    assert code == 2 and "no such run or model directory" in err


def test_read_checkpoint_rejects_non_checkpoints(tmp_path):
    (tmp_path / "a.txt").write_text("hello")
    with pytest.raises(GankitError, match="neither"):
        read_checkpoint(tmp_path / "a.txt")


def test_export_import_keeps_the_mapping_rate_and_the_clamp(tmp_path, gankit_main):
    """map_lr_mul scales the mapping's weights at run time, so an import that assumed 0.01 made a
    different model; both routes (rosinality .pt, an export's .safetensors) now carry it."""
    run = tmp_path / "run"
    gankit.train("stylegan2", data="mnist", out=run, preset="tiny", steps=1, quiet=True,
                 overrides={"max_images": 32, "map_lr_mul": 0.1})
    a = gankit.load(run)
    z = torch.randn(2, a.latent_dim, generator=torch.Generator().manual_seed(0))
    assert gankit_main("export", run, "--out", tmp_path / "r.pt", "--format", "rosinality")[0] == 0
    assert gankit_main("export", run, "--out", tmp_path / "exp")[0] == 0
    for src, out in ((tmp_path / "r.pt", "back_pt"), (tmp_path / "exp" / "model.safetensors", "back_st")):
        code, _, err = gankit_main("import", src, "--out", tmp_path / out)
        assert code == 0, err
        b = gankit.load(tmp_path / out)
        assert (b.config.map_lr_mul, b.config.conv_clamp) == (0.1, a.config.conv_clamp)
        assert torch.allclose(a.generate(z, noise="const"), b.generate(z, noise="const"), atol=1e-6)


def test_an_old_torch_save_file_imports(tmp_path):
    """torch.save before 1.6 wrote a bare pickle, not a zip: read with torch's weights-only
    unpickler (it was sent to the NVlabs reader and refused as 'not an NVlabs snapshot')."""
    nets = random_nets(dict(TINY, conv_clamp=0.0))
    model = types.SimpleNamespace(family="stylegan2", generator=nets["G"], config=None)
    doc = _export(model, nets["D"], tmp_path)
    torch.save(doc, tmp_path / "legacy.pt", _use_new_zipfile_serialization=False)
    assert (tmp_path / "legacy.pt").read_bytes()[:1] == b"\x80"
    summary = gankit.import_model(tmp_path / "legacy.pt", tmp_path / "out")
    assert summary["format"] == "rosinality" and summary["discriminator"]
    z = torch.randn(2, 16)
    assert torch.equal(outputs(gankit.load(tmp_path / "out").generator, z), outputs(nets["G"], z))


@pytest.mark.parametrize("mangle", [
    lambda d: d.__setitem__("args", argparse.Namespace(lr_mlp="abc")),
    lambda d: d.__setitem__("g_ema", [1, 2]),
    lambda d: d.__setitem__("latent_avg", [0.0] * 16),
    lambda d: d["g_ema"].__setitem__("style.1.weight", 3),
])
def test_malformed_rosinality_files_are_one_line_errors(tmp_path, mangle):
    nets = random_nets(dict(TINY, conv_clamp=0.0))
    doc = _export(types.SimpleNamespace(family="stylegan2", generator=nets["G"], config=None), nets["D"], tmp_path)
    mangle(doc)
    torch.save(doc, tmp_path / "bad.pt")
    with pytest.raises(GankitError):
        read_checkpoint(tmp_path / "bad.pt")
