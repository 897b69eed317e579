"""VGG19 feature maps for SRGAN's content loss (Ledig et al. 2017, §2.2.1, Eq. 5).

phi_{i,j} is the feature map "obtained by the j-th convolution (after activation) before the
i-th maxpooling layer" of VGG19 (Simonyan & Zisserman 2015): VGG22 = relu2_2 (low-level
features), VGG54 = relu5_4 (high-level, the SRGAN of the paper's results). The weights are
torchvision's ImageNet ``vgg19`` state dict, read from a file the user already has
(``--set vgg_weights=PATH``; ``.pth`` through ``torch.load(weights_only=True)``, or
``.safetensors``): gankit never downloads.
"""

from __future__ import annotations

from pathlib import Path

import torch
from torch import nn

from gankit.errors import GankitError

# torchvision vgg19().features indices: one past the ReLU after conv2_2 and after conv5_4
LAYER_ENDS = {"vgg22": 9, "vgg54": 36}
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


def read_state(path: str | Path) -> dict[str, torch.Tensor]:
    """A plain state dict from ``path`` without running code from it."""
    p = Path(path).expanduser()
    if not p.is_file():
        raise GankitError(f"vgg_weights {p}: no such file (torchvision's vgg19 ImageNet weights, "
                          f"vgg19-dcbb9e9d.pth, as .pth or .safetensors)")
    try:
        if p.suffix == ".safetensors":
            from safetensors.torch import load_file

            return load_file(str(p))
        state = torch.load(p, map_location="cpu", weights_only=True)
    except Exception as exc:  # noqa: BLE001 - pickle and safetensors errors come in many types
        raise GankitError(f"cannot read the VGG19 weights {p}: {str(exc).splitlines()[0]}") from None
    if not isinstance(state, dict):
        raise GankitError(f"{p} holds no state dict")
    return state


class VGGFeatures(nn.Module):
    """Frozen VGG19 up to ``layer`` (vgg22 | vgg54); takes images in [-1, 1]."""

    def __init__(self, layer: str = "vgg54", weights: str | Path | None = None):
        super().__init__()
        from torchvision.models import vgg19

        if layer not in LAYER_ENDS:
            raise GankitError(f"VGG content layer must be one of {', '.join(LAYER_ENDS)}, got {layer!r}")
        self.features = vgg19(weights=None).features[:LAYER_ENDS[layer]]
        if weights is not None:
            state = read_state(weights)
            wanted = {k[len("features."):]: v for k, v in state.items() if k.startswith("features.")}
            missing = [k for k in self.features.state_dict() if k not in wanted]
            if missing:
                raise GankitError(f"{weights} is not torchvision's vgg19 state dict (missing features.{missing[0]})")
            self.features.load_state_dict({k: wanted[k] for k in self.features.state_dict()})
        self.register_buffer("mean", torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1))
        self.register_buffer("std", torch.tensor(IMAGENET_STD).view(1, 3, 1, 1))
        self.requires_grad_(False)
        self.eval()

    def train(self, mode: bool = True) -> "VGGFeatures":
        return super().train(False)  # always in eval mode: a fixed feature extractor

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = (x.expand(-1, 3, -1, -1) + 1) / 2
        return self.features((x - self.mean) / self.std)
