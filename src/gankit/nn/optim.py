"""Adam (Kingma & Ba 2015), built one way for every family.

torch's fused Adam updates each parameter tensor in one pass where the for-loop Adam launches
about ten element-wise kernels per tensor (``mul_``, ``lerp_``, ``addcmul_``, ``sqrt``,
``div``, ...). The arithmetic is the same to rounding (2e-7 after 50 steps). For the small
networks the launches are what an update costs: on the 2-D benchmark's MLPs (``gan --preset
toy``) the two Adam steps took about a quarter of a training step (docs/benchmarks.md, Speed);
for large convolutional networks the update is a small share either way.
"""

from __future__ import annotations

from collections.abc import Iterable

import torch

# Devices with torch's fused kernel (the CPU's since torch 2.4). Families build their optimizers
# before the engine moves the networks, so the parameters are still on the CPU then: every device
# gankit trains on must be in this list.
FUSED_DEVICES = ("cpu", "cuda", "mps", "xpu")


def _tensors(params) -> list[torch.Tensor]:
    out: list[torch.Tensor] = []
    for item in params:
        out.extend(item["params"] if isinstance(item, dict) else [item])
    return out


def fused_ok(params: Iterable) -> bool:
    """Whether torch's fused Adam can update these parameters (floating point, on a device with
    the kernel)."""
    tensors = _tensors(params)
    return bool(tensors) and all(p.is_floating_point() and p.device.type in FUSED_DEVICES for p in tensors)


def adam(params, lr: float, betas: tuple[float, float] = (0.9, 0.999), **kwargs) -> torch.optim.Adam:
    """``torch.optim.Adam`` with the fused kernel where the parameters' device has one.
    ``params``: parameters or param-group dicts, as torch takes them."""
    params = list(params)
    return torch.optim.Adam(params, lr=lr, betas=betas, fused=fused_ok(params) or None, **kwargs)


def load_state(opt: torch.optim.Optimizer, state: dict) -> None:
    """Load ``state`` (an optimizer state dict read from a checkpoint) into ``opt``, keeping two
    things of ``opt``'s own:

    - its ``fused``/``foreach`` settings: a run resumed on another machine, or one saved before
      Adam was fused, updates with the kernel that suits the machine it runs on now (the same
      arithmetic);
    - its parameters' memory layout for the moments: the checkpoint stores them contiguous, and
      torch's fused CPU Adam walks parameter, gradient and moments in memory order, so a
      ``channels_last`` weight beside a contiguous moment would be updated with another
      element's moment, silently (a resumed DCGAN ended 53 tensors away from the straight run).
    """
    groups = [{**saved, **{k: mine[k] for k in ("fused", "foreach") if k in mine}}
              for saved, mine in zip(state["param_groups"], opt.param_groups)]
    opt.load_state_dict({**state, "param_groups": groups})
    for param, moments in opt.state.items():
        for key, value in moments.items():
            if torch.is_tensor(value) and value.shape == param.shape and value.stride() != param.stride():
                moments[key] = torch.empty_like(param, dtype=value.dtype).copy_(value)
