"""Moving latents along a direction in W (or in W+ on chosen layers) and rendering the strip.

An edit is w' = w + strength * scale * n (InterFaceGAN, Shen et al. 2020, Eq. 3; SeFa and
GANSpace move the same way), with n a unit direction and ``scale`` the std of w along n, so
``strength`` counts stds. With ``layers``, only those layers' ws move (W+: GANSpace §3 and SeFa
§3.3 restrict an edit to a layer range to keep it from changing other things).
"""

from __future__ import annotations

import math
from pathlib import Path

import torch

from gankit.errors import GankitError

MAX_STRENGTH = 10.0  # in stds of w along the direction; further out the images leave the data


def apply_direction(ws: torch.Tensor, direction: torch.Tensor, strength: float | torch.Tensor, *,
                    scale: float = 1.0, layers: list[int] | None = None) -> torch.Tensor:
    """``ws`` (N, w_dim) or (N, num_ws, w_dim) moved by ``strength * scale`` along the unit
    ``direction`` (w_dim,); ``strength`` a number or a per-row tensor (N,). ``layers`` (W+ input
    only) moves only those layers."""
    d = direction.to(ws.device, ws.dtype).flatten()
    if d.shape[0] != ws.shape[-1]:
        raise GankitError(f"the direction has {d.shape[0]} dimensions, the ws have {ws.shape[-1]} (w_dim): "
                          "was it made for another model?")
    s = torch.as_tensor(strength, dtype=ws.dtype, device=ws.device) * scale
    s = s.reshape(-1, *([1] * (ws.dim() - 1))) if s.dim() else s
    if layers is None:
        return ws + s * d
    if ws.dim() != 3:
        raise GankitError("editing chosen layers needs W+ ws of shape (N, num_ws, w_dim)")
    mask = torch.zeros(ws.shape[1], 1, dtype=ws.dtype, device=ws.device)
    mask[layers] = 1
    return ws + s * mask * d


@torch.no_grad()
def edit_strip(model, ws: torch.Tensor, direction: torch.Tensor, strengths: list[float], *, scale: float = 1.0,
               layers: list[int] | None = None, noise: str = "const") -> tuple[torch.Tensor, int]:
    """One row per latent of ``ws`` ((N, w_dim) or (N, num_ws, w_dim)), one column per strength:
    ``(images (N * len(strengths), C, H, W) in [-1, 1], columns)``."""
    if ws.dim() == 2:
        ws = ws[:, None].expand(-1, model.num_ws, -1)
    ws = ws.to(model.device).float()
    rows = [model.synthesis(apply_direction(ws, direction, s, scale=scale, layers=layers), noise=noise)
            for s in strengths]
    images = torch.stack(rows, dim=1).flatten(0, 1)  # row-major: latent, then strength
    return images.clamp(-1, 1).float().cpu(), len(strengths)


def parse_strengths(text: str, steps: int = 7) -> list[float]:
    """``"-3..3"`` -> ``steps`` evenly spaced strengths; ``"0,1,2"`` as listed; ``"2"`` -> [0, 2]."""
    raw = text.strip()
    try:
        if ".." in raw:
            a, b = (float(p) for p in raw.split("..", 1))
            if steps < 2:
                raise GankitError(f"--steps must be >= 2, got {steps}")
            values = [a + (b - a) * i / (steps - 1) for i in range(steps)]
            if a == b:
                raise GankitError(f"--strength {text!r}: the range is empty (from = to)")
        elif "," in raw:
            values = [float(p) for p in raw.split(",") if p.strip()]
        else:
            values = [0.0, float(raw)]
    except ValueError:
        raise GankitError(f"--strength takes a range such as -3..3, a list such as 0,1,2 or one number; "
                          f"got {text!r}") from None
    bad = [v for v in values if not math.isfinite(v) or abs(v) > MAX_STRENGTH]
    if bad or not values:
        raise GankitError(f"--strength {text!r}: strengths are in stds of w along the direction and must be "
                          f"finite within -{MAX_STRENGTH:g}..{MAX_STRENGTH:g}")
    return [round(v, 6) for v in values]


def read_latent(path: str | Path, num_ws: int, w_dim: int) -> torch.Tensor:
    """The ``w`` of a ``.safetensors`` latent (``gankit project`` writes one): (N, num_ws, w_dim) or
    (N, w_dim), returned as given after checking it fits the model."""
    from gankit.engine.checkpoint import read_tensors

    path = Path(path)
    if not path.is_file():
        raise GankitError(f"no such latent file: {path}")
    tensors = read_tensors(path)
    if "w" not in tensors:
        raise GankitError(f"{path} has no tensor 'w' (it has {', '.join(sorted(tensors)) or 'none'}); "
                          "gankit project writes one")
    w = tensors["w"].float()
    if w.dim() == 1:
        w = w[None]
    ok = (w.dim() == 2 and w.shape[1] == w_dim) or (w.dim() == 3 and tuple(w.shape[1:]) == (num_ws, w_dim))
    if not ok:
        raise GankitError(f"{path}: w has shape {tuple(w.shape)}; this model takes (1, {num_ws}, {w_dim}) "
                          f"or (1, {w_dim})")
    return w
