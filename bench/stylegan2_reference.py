"""Check gankit's StyleGAN2 networks against the authors' code (NVlabs/stylegan2-ada-pytorch).

Builds the reference Generator and Discriminator for each of the authors' published
configurations (``train.py``'s ``paper256``, ``paper512``, ``paper1024`` cfg specs, and ``auto``
at 64 px), builds gankit's networks for the same preset, compares every parameter and buffer
name and shape, loads the reference weights into gankit's modules and compares the outputs on
the same inputs (const noise, W and Z). Writes ``bench/results/stylegan2_reference.json``; the
parameter counts it finds are pinned in ``tests/families/test_stylegan2.py``.

The reference repository is read from a local checkout (``--ref``; it is not shipped and
nothing is downloaded): ``git clone https://github.com/NVlabs/stylegan2-ada-pytorch``. Its
custom CUDA ops fall back to their reference implementations on the CPU.

    python bench/stylegan2_reference.py --ref /tmp/nv
"""

from __future__ import annotations

import argparse
import json
import sys
import types
from pathlib import Path

import torch

from gankit.config import build_config
from gankit.families.stylegan2 import StyleGAN2

OUT = Path(__file__).resolve().parent / "results" / "stylegan2_reference.json"


def reference_nets(ref: Path, config, channels: int):
    sys.modules.setdefault("requests", types.ModuleType("requests"))  # dnnlib imports it; unused here
    sys.path.insert(0, str(ref))
    from training.networks import Discriminator, Generator  # noqa: E402  (the reference code)

    common = dict(channel_base=config.channel_base, channel_max=config.channel_max, num_fp16_res=0,
                  conv_clamp=config.conv_clamp)
    G = Generator(z_dim=config.nz, c_dim=0, w_dim=config.w_dim, img_resolution=config.resolution,
                  img_channels=channels, mapping_kwargs=dict(num_layers=config.map_layers), synthesis_kwargs=common)
    D = Discriminator(c_dim=0, img_resolution=config.resolution, img_channels=channels, **common,
                      epilogue_kwargs=dict(mbstd_group_size=config.mbstd_group))
    return G, D


def count(module) -> int:
    return sum(p.numel() for p in module.parameters())


def compare(ref: Path, preset: str, channels: int = 3, batch: int = 4) -> dict:
    config = build_config(StyleGAN2.Config, preset=preset)
    shape = (channels, config.resolution, config.resolution)
    G, D = StyleGAN2.build_generator(config, shape), StyleGAN2.build_discriminators(config, shape)["D"]
    rG, rD = reference_nets(ref, config, channels)
    row = {"preset": preset, "resolution": config.resolution, "G_params": count(G), "D_params": count(D),
           "ref_G_params": count(rG), "ref_D_params": count(rD)}
    for name, ours, theirs in (("G", G, rG), ("D", D, rD)):
        a = {k: tuple(v.shape) for k, v in ours.state_dict().items()}
        b = {k: tuple(v.shape) for k, v in theirs.state_dict().items()}
        row[f"{name}_same_state_dict_layout"] = a == b
        row[f"{name}_layout_differences"] = sorted(set(a.items()) ^ set(b.items()))[:10]
        if a == b:
            ours.load_state_dict(theirs.state_dict())
    if row["G_same_state_dict_layout"]:
        torch.manual_seed(0)
        z = torch.randn(batch, config.nz)
        with torch.no_grad():
            G.eval(), rG.eval()
            theirs = rG(z, None, truncation_psi=0.7, noise_mode="const", force_fp32=True)
            ours = G(z, truncation=0.7, noise_mode="const")
        row["G_max_abs_diff"] = float((ours - theirs).abs().max())
        row["G_output_std"] = float(theirs.std())
    if row["D_same_state_dict_layout"]:
        torch.manual_seed(1)
        img = torch.randn(batch, channels, config.resolution, config.resolution)
        with torch.no_grad():
            theirs = rD(img, None, force_fp32=True).flatten()
            ours = D(img)
        row["D_max_abs_diff"] = float((ours - theirs).abs().max())
        row["D_output_std"] = float(theirs.std())
    return row


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--ref", type=Path, required=True, help="a checkout of NVlabs/stylegan2-ada-pytorch")
    parser.add_argument("--presets", nargs="+", default=["tiny", "small", "paper256", "paper512", "paper1024"])
    args = parser.parse_args()
    old = json.loads(OUT.read_text())["rows"] if OUT.exists() else []  # rows of presets not rerun are kept
    rows = {row["preset"]: row for row in old}
    for preset in args.presets:
        rows[preset] = compare(args.ref, preset)
        print(json.dumps(rows[preset]))
    OUT.parent.mkdir(parents=True, exist_ok=True)
    OUT.write_text(json.dumps({"reference": "NVlabs/stylegan2-ada-pytorch training/networks.py",
                               "rows": list(rows.values())}, indent=2) + "\n")
    print(f"wrote {OUT}")


if __name__ == "__main__":
    main()
