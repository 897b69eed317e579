"""gankit.nn.optim: every family's Adam is torch's fused one where the device has the kernel,
with the for-loop Adam's arithmetic, and a resumed run keeps the kernel of the machine it runs on."""

import json

import pytest
import torch

from gankit.config import build_config
from gankit.engine import checkpoint as ckpt
from gankit.engine.runtime import Runtime
from gankit.engine.trainer import Trainer
from gankit.nn.optim import adam, fused_ok, load_state
from gankit.registry import families


def _train(opt, params, steps, seed):
    gen = torch.Generator().manual_seed(seed)
    for _ in range(steps):
        for p in params:
            p.grad = torch.randn(p.shape, generator=gen)
        opt.step()


def _params(seed=0):
    gen = torch.Generator().manual_seed(seed)
    return [torch.nn.Parameter(torch.randn(40, 30, generator=gen)), torch.nn.Parameter(torch.randn(7, generator=gen))]


def test_adam_is_fused_on_the_cpu_and_updates_as_the_for_loop_adam():
    ours, ref = _params(), _params()
    opt = adam(ours, 1e-3, (0.5, 0.999))
    assert opt.param_groups[0]["fused"] is True
    _train(opt, ours, 50, seed=1)
    _train(torch.optim.Adam(ref, lr=1e-3, betas=(0.5, 0.999)), ref, 50, seed=1)
    for a, b in zip(ours, ref):
        torch.testing.assert_close(a, b, rtol=0, atol=1e-6)
        assert not torch.equal(a, _params()[0] if a.dim() == 2 else _params()[1])  # it moved


def test_adam_takes_param_groups():
    a, b = _params()
    opt = adam([{"params": [a]}, {"params": [b]}], 1e-3)
    assert [g["fused"] for g in opt.param_groups] == [True, True]


def test_parameters_on_a_device_without_the_kernel_get_the_for_loop_adam():
    meta = [torch.nn.Parameter(torch.empty(3, device="meta"))]
    assert not fused_ok(meta)
    assert adam(meta, 1e-3).param_groups[0]["fused"] is None


def test_a_state_saved_by_the_for_loop_adam_resumes_fused_and_exactly_as_it_would_have_gone_on():
    params, twin = _params(), _params()
    old = torch.optim.Adam(params, lr=1e-3, betas=(0.5, 0.99))  # a run saved before Adam was fused
    _train(old, params, 10, seed=2)
    tensors, meta = ckpt.flatten_optimizer(old, "opt.G")
    tensors = {k: v.clone() for k, v in tensors.items()}  # as read back from the file: not old's buffers
    meta = json.loads(json.dumps(meta))
    with torch.no_grad():
        for p, q in zip(twin, params):
            p.copy_(q)
    new = adam(twin, 1.0)  # the resumed run's optimizer, before its state is loaded
    load_state(new, ckpt.unflatten_optimizer(tensors, meta, "opt.G"))
    group = new.param_groups[0]
    assert group["fused"] is True and group["lr"] == 1e-3 and tuple(group["betas"]) == (0.5, 0.99)
    _train(old, params, 10, seed=3)
    _train(new, twin, 10, seed=3)
    for a, b in zip(params, twin):
        torch.testing.assert_close(a, b, rtol=0, atol=1e-6)


def test_a_channels_last_weight_resumes_exactly_from_contiguous_moments():
    """The checkpoint holds the moments contiguous; fused Adam pairs elements by memory order, so
    they must come back in the weight's layout (before the fix: 0.06 off after 3 steps)."""
    gen = torch.Generator().manual_seed(4)
    w0 = torch.randn(8, 4, 3, 3, generator=gen)
    grads = [torch.randn(8, 4, 3, 3, generator=gen) for _ in range(5)]

    def weight():
        return torch.nn.Parameter(w0.clone().contiguous(memory_format=torch.channels_last))

    def steps(opt, p, gs):
        for g in gs:
            opt.zero_grad()
            (p * g).sum().backward()  # autograd gives the grad the weight's layout
            opt.step()

    straight = weight()
    steps(adam([straight], 1e-2), straight, grads)
    resumed = weight()
    first = adam([resumed], 1e-2)
    steps(first, resumed, grads[:2])
    tensors, meta = ckpt.flatten_optimizer(first, "opt.G")
    tensors = {k: v.contiguous().clone() for k, v in tensors.items()}  # as safetensors stores them
    second = adam([resumed], 1.0)
    load_state(second, ckpt.unflatten_optimizer(tensors, json.loads(json.dumps(meta)), "opt.G"))
    steps(second, resumed, grads[2:])
    assert torch.equal(straight, resumed)


@pytest.mark.parametrize("name", sorted(families()))
def test_every_familys_adam_is_fused(name, tmp_path):
    fam = families()[name]
    data = {"singan": "china"}.get(name)  # a picture, where the others take their config's data
    config = build_config(fam.Config, preset="tiny", overrides={"device": "cpu", **({"data": data} if data else {})})
    config.family = name
    trainer = Trainer(fam, config, fam.load_data(config), tmp_path, Runtime(torch.device("cpu")), quiet=True)
    groups = [g for opt in trainer.family.optimizers.values() if isinstance(opt, torch.optim.Adam)
              for g in opt.param_groups]
    assert groups or config.optimizer == "rmsprop"
    assert all(g["fused"] is True for g in groups)
