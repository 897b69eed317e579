"""Does gankit's StyleGAN2 learn as fast as the authors' code? Train NVlabs' stylegan2-ada-pytorch
networks with their own ``StyleGAN2Loss`` (a minimal copy of their training loop's phase logic:
G main / G reg every 4 / D main / D reg every 16, Adam with the lazy-regularisation correction,
EMA with their ramp-up) for ``--steps`` steps on the same faces, then score their EMA generator
with gankit's SWD and save a grid; ``--gankit RUN`` scores a gankit run of the same settings
beside it. Both sides are scored the same way (1,000 samples against every training image).

The reference repository is read from a local checkout (``--ref``), not shipped; on a CPU its
custom ops fall back to their reference implementations.

    python bench/stylegan2_reference_train.py --ref /tmp/nv --steps 600 --gankit runs/sg2_noaug
"""

from __future__ import annotations

import argparse
import json
import sys
import time
import types
from pathlib import Path

import torch

from gankit.data import load_dataset, to_signed
from gankit.metrics.swd import swd
from gankit.viz import render_samples, save_image

ROOT = Path(__file__).resolve().parents[1]


def reference_train(ref: Path, data: torch.Tensor, a) -> torch.nn.Module:
    sys.modules.setdefault("requests", types.ModuleType("requests"))
    sys.path.insert(0, str(ref))
    import copy

    from training.loss import StyleGAN2Loss  # the reference code
    from training.networks import Discriminator, Generator

    common = dict(channel_base=a.channel_base, channel_max=a.channel_max, num_fp16_res=0, conv_clamp=256)
    G = Generator(z_dim=a.nz, c_dim=0, w_dim=a.nz, img_resolution=64, img_channels=3,
                  mapping_kwargs=dict(num_layers=2), synthesis_kwargs=common).train().requires_grad_(False)
    D = Discriminator(c_dim=0, img_resolution=64, img_channels=3, **common,
                      epilogue_kwargs=dict(mbstd_group_size=4)).train().requires_grad_(False)
    G_ema = copy.deepcopy(G).eval()
    loss = StyleGAN2Loss(torch.device("cpu"), G.mapping, G.synthesis, D, r1_gamma=a.gamma, pl_weight=a.pl_weight,
                         style_mixing_prob=0.9)
    phases = []
    for name, module, interval in (("G", G, 4), ("D", D, 16)):
        r = interval / (interval + 1)
        opt = torch.optim.Adam(module.parameters(), lr=a.lr * r, betas=(0.0, 0.99 ** r), eps=1e-8)
        phases += [(name + "main", module, opt, 1), (name + "reg", module, opt, interval)]
    n, batch = data.shape[0], a.batch
    c = torch.zeros([batch, 0])
    ema_nimg_max = a.batch * 10 / 32 * 1000  # stylegan2-ada `auto`: ema_kimg = batch * 10 / 32, ramp-up 0.05
    start = time.perf_counter()
    for step in range(a.steps):
        idx = torch.randint(0, n, (batch,))
        real = to_signed(data[idx])
        flip = torch.rand(batch) < 0.5
        real[flip] = real[flip].flip(-1)
        for name, module, opt, interval in phases:
            if step % interval:
                continue
            if name == "Greg" and a.pl_weight == 0:
                continue
            opt.zero_grad(set_to_none=True)
            module.requires_grad_(True)
            loss.accumulate_gradients(phase=name, real_img=real, real_c=c, gen_z=torch.randn(batch, a.nz), gen_c=c,
                                      sync=True, gain=interval)
            module.requires_grad_(False)
            opt.step()
        cur = (step + 1) * batch
        beta = 0.5 ** (batch / max(min(ema_nimg_max, cur * 0.05), 1e-8))
        with torch.no_grad():
            for p_ema, p in zip(G_ema.parameters(), G.parameters()):
                p_ema.copy_(p.lerp(p_ema, beta))
            for b_ema, b in zip(G_ema.buffers(), G.buffers()):
                b_ema.copy_(b)
        if step % 50 == 0:
            print(f"reference step {step} {time.perf_counter() - start:.0f}s", flush=True)
    return G_ema


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--ref", type=Path, required=True)
    p.add_argument("--steps", type=int, default=600)
    p.add_argument("--batch", type=int, default=16)
    p.add_argument("--lr", type=float, default=0.0025)
    p.add_argument("--gamma", type=float, default=0.0512)
    p.add_argument("--pl-weight", type=float, default=0.0)
    p.add_argument("--nz", type=int, default=256)
    p.add_argument("--channel-base", type=int, default=1024)
    p.add_argument("--channel-max", type=int, default=64)
    p.add_argument("--where", default="race=East Asian")
    p.add_argument("--gankit", type=Path, help="a gankit run with the same settings, scored beside")
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--name", default="reference")
    a = p.parse_args()
    torch.set_num_threads(a.threads)
    torch.manual_seed(0)
    data = load_dataset("fairface", resolution=64, where=a.where).data
    G = reference_train(a.ref, data, a)
    torch.manual_seed(0)
    with torch.no_grad():
        fake = torch.cat([G(torch.randn(100, a.nz), None, noise_mode="const").clamp(-1, 1) for _ in range(10)])
    real = to_signed(data)
    doc = {"settings": vars(a) | {"ref": str(a.ref), "gankit": str(a.gankit)},
           "reference": {"swd": swd(real, fake)["swd"]}}
    save_image(render_samples(fake[:16], nrow=8), ROOT / "docs" / "images" / f"stylegan2_{a.name}_train.png")
    if a.gankit:
        import gankit

        model = gankit.load(a.gankit)
        ours = model.sample(1000, seed=0)
        doc["gankit"] = {"swd": swd(real, to_signed(ours))["swd"], "step": getattr(model, "step", None)}
    out = ROOT / "bench" / "results" / f"stylegan2_{a.name}_train.json"
    out.write_text(json.dumps(doc, indent=2, default=str) + "\n")
    print(json.dumps(doc))


if __name__ == "__main__":
    main()
