"""Self-attention for convolutional GANs (Zhang, Goodfellow, Metaxas & Odena 2019,
"Self-Attention Generative Adversarial Networks", arXiv:1805.08318, §3 and Fig. 2).

Every position attends to every other, so a feature map can relate distant regions that a stack
of 3x3 convolutions links only through many layers. With 1x1 convolutions f (queries), g (keys)
and h (values), position j's output is o_j = v(sum_i beta_ji h(x_i)) with
beta_ji = softmax_i(f(x_j)^T g(x_i)), and the block returns x + gamma * o with gamma a learned
scalar that starts at 0: the network first relies on local cues and learns to weigh in the
non-local ones (§3). Queries and keys have C/8 channels (the paper's C-bar = C/8); values have
C/2, and keys and values are max-pooled 2x2 (a quarter of the memory for the attention map), as
in the authors' released code and BigGAN's (the paper gives h C/8 channels and no pooling).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from gankit.nn.spectral import sn


class SelfAttention(nn.Module):
    """(N, C, H, W) -> (N, C, H, W): ``x + gamma * attention(x)``, gamma initialised to 0.

    ``spectral_norm`` normalises the four 1x1 convolutions (SAGAN applies SN to G and D alike);
    ``pool`` max-pools keys and values 2x2 (when H and W are even).
    """

    def __init__(self, channels: int, *, spectral_norm: bool = True, pool: bool = True):
        super().__init__()
        self.channels, self.pool = channels, pool
        qk, v = max(1, channels // 8), max(1, channels // 2)

        def conv(a: int, b: int) -> nn.Module:
            layer = nn.Conv2d(a, b, 1, bias=False)
            nn.init.orthogonal_(layer.weight)
            return sn(layer, spectral_norm)

        self.query, self.key, self.value, self.out = conv(channels, qk), conv(channels, qk), conv(channels, v), conv(v, channels)
        self.gamma = nn.Parameter(torch.zeros(()))

    def _pooled(self, t: torch.Tensor) -> torch.Tensor:
        if self.pool and t.shape[2] % 2 == 0 and t.shape[3] % 2 == 0:
            return F.max_pool2d(t, 2)
        return t

    def attention_map(self, x: torch.Tensor) -> torch.Tensor:
        """beta (N, H*W, M): row j holds the weights position j gives the M (pooled) key positions."""
        q = self.query(x).flatten(2)  # (N, C/8, HW)
        k = self._pooled(self.key(x)).flatten(2)  # (N, C/8, M)
        return torch.softmax(torch.bmm(q.transpose(1, 2), k), dim=-1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        n, _, h, w = x.shape
        beta = self.attention_map(x)
        v = self._pooled(self.value(x)).flatten(2)  # (N, C/2, M)
        o = torch.bmm(v, beta.transpose(1, 2)).view(n, -1, h, w)  # sum_i beta_ji h(x_i)
        return x + self.gamma * self.out(o)
