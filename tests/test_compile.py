"""``compile=true``: every family trains through ``torch.compile``d modules, and the phases that
backpropagate through a gradient (R1, the gradient penalty, path length) see them uncompiled,
since AOTAutograd has no double backward.

The tests compile with the ``aot_eager`` backend: the same AOTAutograd graphs as the default
``inductor`` (the double-backward error is AOTAutograd's), without seconds of C++ code generation
per graph."""

from __future__ import annotations

import functools

import pytest
import torch
from torch._dynamo.eval_frame import OptimizedModule

import gankit
from gankit.engine import checkpoint as ckpt


@pytest.fixture
def aot_eager(monkeypatch):
    monkeypatch.setattr(torch, "compile", functools.partial(torch.compile, backend="aot_eager"))
    torch._dynamo.reset()
    yield
    torch._dynamo.reset()


def train(family: str, out, *sets: str, data: str | None = None, on_step=None, steps: int = 2):
    return gankit.train(family, data=data, out=out, steps=steps, preset="tiny", quiet=True, seed=3,
                        overrides=list(sets), on_step=on_step)


@pytest.mark.parametrize("family, sets, regularised", [
    ("wgan-gp", (), {"D"}),                       # the gradient penalty in every D step
    ("dcgan", ("reg=r1", "reg_interval=4"), {"D_reg"}),  # lazy R1 in a phase of its own
    ("stylegan2", (), {"D_r1", "G_pl"}),          # lazy R1 and path length, both at step 0
    ("stargan", (), {"D"}),
])
def test_compiled_training_runs_the_double_backward_phases_uncompiled(aot_eager, tmp_path, family, sets, regularised):
    seen = {}

    def look(trainer, step):
        seen.update({name: {k: isinstance(m, OptimizedModule) for k, m in view.items()}
                     for name, view in trainer.phase_views.items()})

    result = train(family, tmp_path / "run", "compile=true", *sets, on_step=look)
    assert result.status == "finished" and result.step == 2
    assert {p for p, compiled in seen.items() if not any(compiled.values())} == regularised
    assert all(all(compiled.values()) for p, compiled in seen.items() if p not in regularised)


def test_a_compiled_run_trains_the_same_weights_as_an_eager_one(aot_eager, tmp_path):
    compiled_views = []
    train("dcgan", tmp_path / "eager", "reg=r1", "reg_interval=2", steps=4)
    train("dcgan", tmp_path / "compiled", "reg=r1", "reg_interval=2", "compile=true", steps=4,
          on_step=lambda trainer, step: compiled_views.append(isinstance(trainer.phase_views["G"]["G"], OptimizedModule)))
    assert compiled_views and all(compiled_views)
    eager, meta = ckpt.load_checkpoint(ckpt.latest_checkpoint(tmp_path / "eager"))
    compiled, _ = ckpt.load_checkpoint(ckpt.latest_checkpoint(tmp_path / "compiled"))
    assert meta["step"] == 4 and eager.keys() == compiled.keys()
    for k in (k for k in eager if k.startswith("net.") and eager[k].is_floating_point()):
        torch.testing.assert_close(compiled[k], eager[k], rtol=1e-4, atol=1e-5, msg=k)


def test_compile_without_a_cpp_compiler_is_one_clear_user_error(gankit_main, monkeypatch, tmp_path):
    from torch._inductor import cpp_builder, exc

    def no_compiler():
        raise exc.InvalidCxxCompiler()

    monkeypatch.setattr(cpp_builder, "get_cpp_compiler", no_compiler)
    code, out, err = gankit_main("train", "dcgan", "--data", "mnist", "--preset", "tiny", "--steps", "1",
                                 "--out", tmp_path / "run", "--set", "compile=true", "--set", "device=cpu")
    assert code == 2
    assert err.strip().splitlines()[-1].endswith("install g++ (or set CXX), or drop compile")
    assert "Traceback" not in err
