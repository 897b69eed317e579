"""Exponential moving average of generator weights (Karras et al. 2018, ProGAN §A.1;
Yazıcı et al. 2019, "The Unusual Effectiveness of Averaging in GAN Training")."""

from __future__ import annotations

import copy

import torch
from torch import nn

EMA_KEY = "G_ema"  # the averaged generator's name among a checkpoint's networks



def make_ema(module: nn.Module) -> nn.Module:
    """A frozen copy of ``module`` in eval mode."""
    ema = copy.deepcopy(module).eval()
    ema.requires_grad_(False)
    return ema


def ema_beta(decay: float, step: int) -> float:
    """Warm-up so early averages are not dominated by the random init:
    beta = min(decay, (1 + step) / (10 + step)) (as tf.train.ExponentialMovingAverage)."""
    return min(decay, (1.0 + step) / (10.0 + step))


@torch.no_grad()
def update_ema(ema: nn.Module, module: nn.Module, beta: float) -> None:
    """ema <- beta * ema + (1 - beta) * module for parameters; buffers (BatchNorm stats) are copied."""
    ema_params = list(ema.parameters())
    params = [p.detach() for p in module.parameters()]
    torch._foreach_lerp_(ema_params, params, 1.0 - beta)
    for b_ema, b in zip(ema.buffers(), module.buffers()):
        b_ema.copy_(b)
