"""Super-resolution scores by the field's protocol (BasicSR's ``basicsr/metrics/psnr_ssim.py``,
the one SR papers' tables follow): both images rounded to 8 bits, converted to the luma Y of
ITU-R BT.601 in [16, 235] (MATLAB's ``rgb2ycbcr``), ``scale`` pixels cropped from every border,
then PSNR with peak 255 and SSIM (Wang et al. 2004: Gaussian window 11, sigma 1.5,
K = (0.01, 0.03), data range 255; torchmetrics' implementation) on Y.

Besides distortion, a sharpness score for the perception side of the trade-off (Blau & Michaeli
2018, arXiv:1711.06077): the ratio of the output's mean gradient magnitude (Sobel, on Y) to the
reference's, 1 when the output has as much edge and texture contrast as the truth, below 1 when
blurred (MSE-trained nets, bicubic), above when it hallucinates extra texture or noise.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torchmetrics.functional.image import structural_similarity_index_measure

from gankit.errors import GankitError

Y_WEIGHTS = (65.481, 128.553, 24.966)  # BT.601 on RGB in [0, 1]: Y = 16 + w . rgb, in [16, 235]


def to_y(images: torch.Tensor) -> torch.Tensor:
    """Images (N, C, H, W) in [-1, 1] (or uint8) -> Y (N, 1, H, W) in [16, 235], from the
    8-bit rounding of the picture as it would be saved; grey images are their own luma."""
    x = images.float() if images.dtype == torch.uint8 else ((images.float().clamp(-1, 1) + 1) * 127.5).round()
    x = x / 255.0
    if x.shape[1] == 1:
        return 16.0 + 219.0 * x
    w = torch.tensor(Y_WEIGHTS, dtype=x.dtype, device=x.device).view(1, 3, 1, 1)
    return 16.0 + (x * w).sum(1, keepdim=True)


def _cropped_y(images: torch.Tensor, border: int) -> torch.Tensor:
    y = to_y(images).double()
    return y[..., border:y.shape[-2] - border, border:y.shape[-1] - border] if border else y


def _check(sr: torch.Tensor, hr: torch.Tensor, border: int) -> None:
    if sr.dim() != 4 or sr.shape != hr.shape:
        raise GankitError(f"super-resolution scores need two (N, C, H, W) batches of one shape, got "
                          f"{tuple(sr.shape)} and {tuple(hr.shape)}")
    if min(sr.shape[-2:]) - 2 * border < 11:
        raise GankitError(f"the images ({sr.shape[-1]}x{sr.shape[-2]}) are too small to score after cropping "
                          f"{border} px from each border")


def psnr_y(sr: torch.Tensor, hr: torch.Tensor, border: int = 0) -> torch.Tensor:
    """PSNR (dB) per image on Y with ``border`` pixels cropped."""
    _check(sr, hr, border)
    mse = (_cropped_y(sr, border) - _cropped_y(hr, border)).square().mean(dim=(1, 2, 3))
    return (10 * torch.log10(255.0 ** 2 / mse.clamp_min(1e-10))).float()


def ssim_y(sr: torch.Tensor, hr: torch.Tensor, border: int = 0) -> torch.Tensor:
    """SSIM per image on Y with ``border`` pixels cropped."""
    _check(sr, hr, border)
    return structural_similarity_index_measure(_cropped_y(sr, border), _cropped_y(hr, border), data_range=255.0,
                                               reduction="none").float()


def sharpness_ratio(sr: torch.Tensor, hr: torch.Tensor, border: int = 0) -> torch.Tensor:
    """Mean Sobel gradient magnitude of Y_sr over that of Y_hr, per image (see the module docstring)."""
    _check(sr, hr, border)
    gx = torch.tensor([[-1, 0, 1], [-2, 0, 2], [-1, 0, 1]], dtype=torch.float64).view(1, 1, 3, 3)
    kernels = torch.cat([gx, gx.transpose(2, 3)])

    def contrast(x: torch.Tensor) -> torch.Tensor:
        return F.conv2d(_cropped_y(x, border), kernels).square().sum(1).sqrt().mean(dim=(1, 2))

    return (contrast(sr) / contrast(hr).clamp_min(1e-10)).float()


def sr_scores(sr: torch.Tensor, hr: torch.Tensor, scale: int) -> dict[str, float]:
    """Mean PSNR, SSIM and sharpness ratio of a batch, the border of ``scale`` pixels cropped."""
    return {"psnr": float(psnr_y(sr, hr, scale).mean()), "ssim": float(ssim_y(sr, hr, scale).mean()),
            "sharpness": float(sharpness_ratio(sr, hr, scale).mean())}
