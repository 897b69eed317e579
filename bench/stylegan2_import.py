"""``gankit import`` against the reference implementations: equal outputs, and no code run.

For each reference (NVlabs stylegan2-ada-pytorch, rosinality stylegan2-pytorch) and each
configuration, builds the reference Generator and Discriminator with random weights on the CPU
(every parameter perturbed, so noise strengths, biases and the mean w are all non-zero), saves
them as the reference training code does (NVlabs: ``pickle.dump`` of the persistent networks;
rosinality: ``torch.save`` of ``g``, ``d``, ``g_ema``, ``latent_avg``, ``args``), imports the file
with ``gankit import``, and compares, for the same z:

- NVlabs ``G(z, None, truncation_psi=psi, noise_mode="const")`` and rosinality
  ``g_ema([z], truncation=psi, truncation_latent=latent_avg, randomize_noise=False)`` against
  ``gankit.load(DIR).generate(z, truncation=psi, noise="const")`` at psi 1 and 0.7;
- the discriminators' logits on the same images;
- rosinality only: ``gankit export --format rosinality`` loaded back into rosinality's own
  ``Generator`` / ``Discriminator`` (strict ``load_state_dict``) and run again.

It then proves that importing a ``.pkl`` runs none of its code: a snapshot is written from a copy
of NVlabs' ``networks.py`` whose first line writes a trace file when the module is executed; plain
``pickle.load`` (the reference's way) leaves the trace, ``gankit import`` does not.

The reference repositories are read from local checkouts (nothing is downloaded or shipped):

    python bench/stylegan2_import.py --nvlabs /tmp/nv --rosinality /tmp/rosi

rosinality's CUDA extensions are not built: its ``op`` package compiles them at import time, so
the script replaces ``torch.utils.cpp_extension.load`` with a stub while importing it; on the CPU
the package then runs its own pure-PyTorch paths. Writes ``bench/results/stylegan2_import.json``.
"""

from __future__ import annotations

import argparse
import json
import os
import pickle
import subprocess
import sys
import tempfile
import textwrap
import time
import types
from pathlib import Path

import torch

import gankit
from gankit.interop.stylegan2_io import export_rosinality, import_stylegan2

OUT = Path(__file__).resolve().parent / "results" / "stylegan2_import.json"
PSIS = (1.0, 0.7)


def perturb(*nets, scale: float = 0.3):
    torch.manual_seed(1)
    with torch.no_grad():
        for net in nets:
            for p in net.parameters():
                p.add_(torch.randn_like(p) * scale)


def max_diff(a: torch.Tensor, b: torch.Tensor) -> float:
    assert a.shape == b.shape, (a.shape, b.shape)
    return float((a.float() - b.float()).abs().max())


def diffs(ref: dict, ours: dict) -> dict:
    """generate() against the reference clamped to [-1, 1], the raw synthesis against the raw
    reference, and the discriminators' logits."""
    out = {k: max_diff(ref[k].clamp(-1, 1), ours[k]) for k in ref if k.startswith("psi")}
    out.update({f"{k}_raw": max_diff(ref[k], ours[f"{k}_raw"]) for k in ref if k.startswith("psi")})
    out["D"] = max_diff(ref["D"], ours["D"])
    return out


def gankit_outputs(out_dir: Path, z: torch.Tensor, images: torch.Tensor) -> dict:
    model = gankit.load(out_dir)
    res = {f"psi{psi}": model.generate(z, truncation=psi, noise="const") for psi in PSIS}
    # generate() clamps to [-1, 1] (images); the raw synthesis output is compared too
    res.update({f"psi{psi}_raw": model.synthesis(model.mapping(z, truncation=psi), noise="const") for psi in PSIS})
    from gankit.engine.checkpoint import read_tensors
    from gankit.interop.stylegan2_io import build_networks

    cfg = model.config
    values = dict(resolution=cfg.resolution, channels=cfg.channels, nz=cfg.nz, w_dim=cfg.w_dim,
                  map_layers=cfg.map_layers, map_lr_mul=cfg.map_lr_mul, channel_base=cfg.channel_base,
                  channel_max=cfg.channel_max, conv_clamp=cfg.conv_clamp, mbstd_group=cfg.mbstd_group)
    D = build_networks(values)["D"].eval()
    tensors = read_tensors(out_dir / "model.safetensors")
    D.load_state_dict({k[len("extra.D."):]: v for k, v in tensors.items() if k.startswith("extra.D.")})
    with torch.no_grad():
        res["D"] = D(images)
    return res


def timed_import(path: Path, out: Path) -> tuple[dict, float]:
    started = time.perf_counter()
    summary = import_stylegan2(path, out)
    return summary, time.perf_counter() - started


# ---- NVlabs ---------------------------------------------------------------------------------------
def nvlabs_case(ref: Path, work: Path, name: str, resolution: int, map_layers: int, channel_base: int,
                channel_max: int, z_dim: int, mbstd: int) -> dict:
    sys.modules.setdefault("requests", types.ModuleType("requests"))
    if str(ref) not in sys.path:
        sys.path.insert(0, str(ref))
    from training.networks import Discriminator, Generator

    common = dict(channel_base=channel_base, channel_max=channel_max, num_fp16_res=0, conv_clamp=256)
    G = Generator(z_dim=z_dim, c_dim=0, w_dim=z_dim, img_resolution=resolution, img_channels=3,
                  mapping_kwargs=dict(num_layers=map_layers), synthesis_kwargs=common).eval()
    D = Discriminator(c_dim=0, img_resolution=resolution, img_channels=3, **common,
                      epilogue_kwargs=dict(mbstd_group_size=mbstd)).eval()
    perturb(G, D)
    with torch.no_grad():
        G.mapping.w_avg.normal_()
    path = work / f"{name}.pkl"
    with open(path, "wb") as f:
        pickle.dump(dict(G=G, D=D, G_ema=G), f)
    out = work / f"{name}-gankit"
    summary, seconds = timed_import(path, out)
    z = torch.randn(4, z_dim, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        ref_out = {f"psi{psi}": G(z, None, truncation_psi=psi, noise_mode="const") for psi in PSIS}
        ref_out["D"] = D(ref_out["psi1.0"], None).flatten()
    ours = gankit_outputs(out, z, ref_out["psi1.0"])
    return {"case": name, "reference": "nvlabs", "file_mb": round(path.stat().st_size / 2 ** 20, 1),
            "import_s": round(seconds, 2), "summary": summary,
            "max_abs_diff": diffs(ref_out, ours),
            "image_range": [float(ref_out["psi1.0"].min()), float(ref_out["psi1.0"].max())]}


TRACE_LINE = "import os as _o; open(_o.environ['GANKIT_TRACE_FILE'], 'w').write('the stored code ran')\n"


def no_code_check(ref: Path, work: Path) -> dict:
    """A snapshot whose stored module source writes a trace file when executed."""
    traced_dir = work / "traced"
    traced_dir.mkdir(exist_ok=True)
    (traced_dir / "traced_networks.py").write_text(TRACE_LINE + (ref / "training" / "networks.py").read_text(encoding="utf-8-sig"))
    trace = work / "trace.txt"
    make = textwrap.dedent(f"""
        import pickle, sys, types, torch
        sys.modules.setdefault("requests", types.ModuleType("requests"))
        sys.path[:0] = [{str(ref)!r}, {str(traced_dir)!r}]
        from traced_networks import Generator
        G = Generator(z_dim=16, c_dim=0, w_dim=16, img_resolution=16, img_channels=3,
                      mapping_kwargs=dict(num_layers=2), synthesis_kwargs=dict(channel_base=256, channel_max=32))
        pickle.dump(dict(G_ema=G), open({str(work / 'traced.pkl')!r}, 'wb'))
    """)
    load_ref = textwrap.dedent(f"""
        import pickle, sys, types
        sys.modules.setdefault("requests", types.ModuleType("requests"))
        sys.path.insert(0, {str(ref)!r})
        pickle.load(open({str(work / 'traced.pkl')!r}, 'rb'))
    """)
    env = {**os.environ, "GANKIT_TRACE_FILE": str(trace)}
    subprocess.run([sys.executable, "-c", make], check=True, env=env, capture_output=True)
    trace.unlink()  # importing traced_networks to build the file wrote it once
    cli = subprocess.run([sys.executable, "-m", "gankit", "import", str(work / "traced.pkl"), "--out",
                          str(work / "traced-gankit")], env=env, capture_output=True, text=True)
    after_gankit = trace.exists()
    subprocess.run([sys.executable, "-c", load_ref], check=True, env=env, capture_output=True)
    after_reference = trace.exists()
    return {"gankit_import_exit_code": cli.returncode, "trace_after_gankit_import": after_gankit,
            "trace_after_reference_pickle_load": after_reference,
            "stored_code_ran_under_gankit": after_gankit}


# ---- rosinality -----------------------------------------------------------------------------------
def rosinality_module(ref: Path):
    import torch.utils.cpp_extension as ext

    if str(ref) not in sys.path:
        sys.path.insert(0, str(ref))
    real = ext.load
    ext.load = lambda *a, **k: types.SimpleNamespace()  # its CUDA ops; the CPU paths are pure PyTorch
    try:
        import model as rosinality_model  # noqa: E402  (the reference code)
    finally:
        ext.load = real
    return rosinality_model


def rosinality_case(ref: Path, work: Path, name: str, size: int, n_mlp: int, channel_multiplier: int,
                    latent: int = 512) -> dict:
    m = rosinality_module(ref)
    g = m.Generator(size, latent, n_mlp, channel_multiplier=channel_multiplier).eval()
    d = m.Discriminator(size, channel_multiplier=channel_multiplier).eval()
    perturb(g, d)
    latent_avg = torch.randn(latent)
    args = argparse.Namespace(size=size, latent=latent, n_mlp=n_mlp, channel_multiplier=channel_multiplier,
                              lr_mlp=0.01, iter=800000, batch=16)
    path = work / f"{name}.pt"
    torch.save({"g": g.state_dict(), "d": d.state_dict(), "g_ema": g.state_dict(), "latent_avg": latent_avg,
                "args": args, "ada_aug_p": 0.0}, path)
    out = work / f"{name}-gankit"
    summary, seconds = timed_import(path, out)
    z = torch.randn(4, latent, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        ref_out = {f"psi{psi}": g([z], truncation=psi, truncation_latent=latent_avg, randomize_noise=False)[0]
                   for psi in PSIS}
        ref_out["D"] = d(ref_out["psi1.0"]).flatten()
    ours = gankit_outputs(out, z, ref_out["psi1.0"])
    # and back: gankit's export loaded by rosinality's own modules
    from gankit.engine.checkpoint import read_tensors

    tensors = read_tensors(out / "model.safetensors")
    back = export_rosinality(gankit.load(out), work / f"{name}-export.pt",
                             discriminator={k[8:]: v for k, v in tensors.items() if k.startswith("extra.D.")})
    ckpt = torch.load(back, weights_only=True)
    g2 = m.Generator(size, latent, n_mlp, channel_multiplier=channel_multiplier).eval()
    d2 = m.Discriminator(size, channel_multiplier=channel_multiplier).eval()
    g2.load_state_dict(ckpt["g_ema"])  # strict: every key and shape as rosinality's own
    d2.load_state_dict(ckpt["d"])
    with torch.no_grad():
        again = {f"psi{psi}": g2([z], truncation=psi, truncation_latent=ckpt["latent_avg"], randomize_noise=False)[0]
                 for psi in PSIS}
        again["D"] = d2(ref_out["psi1.0"]).flatten()
    return {"case": name, "reference": "rosinality", "file_mb": round(path.stat().st_size / 2 ** 20, 1),
            "import_s": round(seconds, 2), "summary": summary,
            "max_abs_diff": diffs(ref_out, ours),
            "export_roundtrip_max_abs_diff": {k: max_diff(ref_out[k], again[k]) for k in ref_out},  # raw
            "image_range": [float(ref_out["psi1.0"].min()), float(ref_out["psi1.0"].max())]}


def write_layout(ref: Path, path: Path) -> None:
    m = rosinality_module(ref)
    g, d = m.Generator(64, 512, 2, channel_multiplier=1), m.Discriminator(64, channel_multiplier=1)
    doc = {"source": "rosinality/stylegan2-pytorch model.py: Generator(64, 512, 2, channel_multiplier=1), "
                     "Discriminator(64, channel_multiplier=1); written by bench/stylegan2_import.py --keys",
           "g_ema": {k: list(v.shape) for k, v in g.state_dict().items()},
           "d": {k: list(v.shape) for k, v in d.state_dict().items()}}
    path.write_text(json.dumps(doc, indent=0))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--nvlabs", type=Path, required=True, help="checkout of NVlabs/stylegan2-ada-pytorch")
    ap.add_argument("--rosinality", type=Path, required=True, help="checkout of rosinality/stylegan2-pytorch")
    ap.add_argument("--out", type=Path, default=OUT)
    ap.add_argument("--full", action="store_true", help="also the 1024 px config-F networks (minutes, ~1 GB)")
    ap.add_argument("--keys", type=Path, help="only write rosinality's parameter names and shapes at 64 px (the "
                    "tests' fixture, tests/fixtures/rosinality_layout_64.json) and stop")
    args = ap.parse_args()
    if args.keys:
        write_layout(args.rosinality, args.keys)
        return
    torch.set_grad_enabled(False)
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        rows.append(nvlabs_case(args.nvlabs, work, "nvlabs-auto64", 64, 2, 16384, 512, 512, 4))
        rows.append(nvlabs_case(args.nvlabs, work, "nvlabs-paper256", 256, 8, 16384, 512, 512, 8))
        rows.append(rosinality_case(args.rosinality, work, "rosinality-64-mlp2-cm1", 64, 2, 1))
        rows.append(rosinality_case(args.rosinality, work, "rosinality-256-cm2", 256, 8, 2))
        if args.full:
            rows.append(nvlabs_case(args.nvlabs, work, "nvlabs-paper1024", 1024, 8, 32768, 512, 512, 4))
            rows.append(rosinality_case(args.rosinality, work, "rosinality-1024-cm2", 1024, 8, 2))
        check = no_code_check(args.nvlabs, work)
    from _environment import cpu_name, environment  # bench/ is on sys.path when a script runs

    doc = {"cases": rows, "no_code_run": check, "tolerance": 1e-3,
           "all_within_tolerance": all(v <= 1e-3 for r in rows for v in r["max_abs_diff"].values()),
           "environment": {**environment(), "cpu": cpu_name()}}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(doc, indent=2))
    for r in rows:
        print(r["case"], {k: f"{v:.2e}" for k, v in r["max_abs_diff"].items()},
              r.get("export_roundtrip_max_abs_diff", ""))
    print("no code run:", check)


if __name__ == "__main__":
    main()
