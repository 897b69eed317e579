"""Import pretrained StyleGAN2 checkpoints into gankit, and export gankit models back.

Sources (the format is read from the file, not its name):

- rosinality ``stylegan2-pytorch`` ``.pt``: a dict with ``g_ema`` (and ``latent_avg``, ``g``, ``d``,
  optimizer states, ``args``) or a bare generator state dict; read by
  ``torch.load(weights_only=True)``, allowing the one extra class its training checkpoints hold (``argparse.Namespace``).
- NVlabs stylegan2-ada-pytorch / stylegan3 ``.pkl`` snapshots (``G_ema``, ``D``): read with
  :mod:`gankit.interop.safe_pickle`, which never runs the code stored in them.
- a ``.safetensors`` file with NVlabs-named tensors (``mapping.fc0.weight``, ...).

The architecture (resolution, widths, mapping depth, z and w dimensions) is read from the tensor
shapes; the two numbers the tensors do not hold come from the file where it records them (NVlabs
stores every layer's attributes: the mapping's learning-rate multiplier is its ``bias_gain``, the
activation clamp its ``conv_clamp``; rosinality's ``args.lr_mlp``) and default to the papers'
values otherwise (0.01; no clamp for rosinality, which has none).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import pickle
import zipfile
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path

import torch

from gankit.data.loader import IMPORTED_PREFIX
from gankit.errors import GankitError
from gankit.files import atomic_target, write_text_atomic
from gankit.interop import layouts, safe_pickle

W_AVG_SAMPLES = 10_000  # z samples for the mean w when a file has none (rosinality's training checkpoints)


@dataclass
class Checkpoint:
    """A StyleGAN2 checkpoint read into gankit's parameter names."""

    format: str  # "rosinality" | "nvlabs" | "safetensors"
    generator: dict[str, torch.Tensor]  # the EMA generator (g_ema / G_ema), w_avg included
    discriminator: dict[str, torch.Tensor] | None
    arch: layouts.Architecture
    map_lr_mul: float = 0.01
    conv_clamp: float | None = None
    mbstd_group: int = 4
    notes: list[str] = field(default_factory=list)


# ---- reading --------------------------------------------------------------------------------------
def read_checkpoint(path: str | Path, *, map_lr_mul: float | None = None) -> Checkpoint:
    """Read any supported StyleGAN2 checkpoint (see the module doc)."""
    path = Path(path)
    if path.is_dir():
        raise GankitError(f"{path} is a folder; give the checkpoint file (.pt, .pkl or .safetensors)")
    if not path.is_file():
        raise GankitError(f"no such checkpoint file: {path}")
    with open(path, "rb") as f:
        head = f.read(4)
    try:
        if path.suffix == ".safetensors":
            ckpt = _read_safetensors(path)
        elif head[:1] == b"\x80":  # a pickle: an old (pre-1.6) torch.save file, or an NVlabs snapshot
            obj = _torch_load_tensors(path, legacy=True)
            ckpt = _read_pickle(path) if obj is None else _rosinality_from(obj, path)
        elif head[:2] == b"PK" or zipfile.is_zipfile(path):  # torch.save's zip format
            ckpt = _rosinality_from(_torch_load_tensors(path), path)
        else:
            raise GankitError(f"{path} is neither a .pt (torch.save), a .pkl snapshot nor a .safetensors file")
    except (TypeError, AttributeError, ValueError, KeyError, IndexError, RuntimeError, RecursionError) as exc:
        # well-formed files that hold something else than a StyleGAN2 where one was expected
        why = (str(exc).strip().splitlines() or [""])[0][:200]
        raise GankitError(f"{path} does not hold a StyleGAN2 gankit can read ({type(exc).__name__}: {why})") from None
    if map_lr_mul is not None:
        ckpt.map_lr_mul = float(map_lr_mul)
    return ckpt


def _read_safetensors(path: Path) -> Checkpoint:
    """NVlabs-named tensors; a gankit export's ``config.json`` beside them gives the mapping's
    learning-rate multiplier and the clamp (else NVlabs' defaults, 0.01 and 256, said in a note)."""
    from gankit.engine.checkpoint import read_tensors

    ckpt = _from_nvlabs_tensors(read_tensors(path), None, "safetensors")
    try:
        doc = json.loads((path.parent / "config.json").read_text())
        config = doc["config"] if doc.get("family") == "stylegan2" else None
    except (OSError, ValueError, TypeError, KeyError, AttributeError):
        config = None
    if isinstance(config, dict) and isinstance(config.get("map_lr_mul"), (int, float)):
        ckpt.map_lr_mul = float(config["map_lr_mul"])
        clamp = config.get("conv_clamp")
        ckpt.conv_clamp = float(clamp) if isinstance(clamp, (int, float)) and clamp > 0 else None
    else:
        ckpt.notes.append("no gankit config.json beside the file: assumed NVlabs' map_lr_mul 0.01 and "
                          "conv_clamp 256 (--map-lr-mul sets the first)")
    return ckpt


def _torch_load_tensors(path: Path, *, legacy: bool = False):
    """``torch.load`` with torch's weights-only unpickler (tensors, plain data and argparse's
    Namespace, which rosinality stores its args in). ``legacy``: a bare pickle, which is either an
    old torch.save file or an NVlabs snapshot: None when it is not torch's (the snapshot reader's
    turn)."""
    try:
        with torch.serialization.safe_globals([argparse.Namespace]):
            return torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as exc:
        if legacy:
            return None
        first = str(exc).strip().splitlines()
        why = next((line for line in first if "Unsupported global" in line), first[0] if first else "")
        raise GankitError(f"refusing to load {path}: it holds more than tensors and plain data ({why.strip()})") from None
    except (RuntimeError, OSError, EOFError, TypeError, ValueError, AttributeError) as exc:
        if legacy:  # not torch's: the snapshot reader says what it is
            return None
        raise GankitError(f"cannot read {path}: {str(exc).splitlines()[0]}") from None


def _rosinality_from(obj, path: Path) -> Checkpoint:
    """A rosinality checkpoint dict (``g_ema``, ``latent_avg``, ``d``, ``args``) as a Checkpoint."""
    if not isinstance(obj, dict):
        raise GankitError(f"{path} holds a {type(obj).__name__}, not a checkpoint dict")
    if "g_ema" not in obj and "style.1.weight" in obj:  # a bare generator state dict
        obj = {"g_ema": obj}
    if "g_ema" not in obj:
        if "mapping.fc0.weight" in obj:  # NVlabs names in a .pt
            return _from_nvlabs_tensors(obj, None, "nvlabs")
        raise GankitError(f"{path} has no 'g_ema' generator (keys: {', '.join(sorted(map(str, obj))[:8])})")
    g_sd = obj["g_ema"]
    arch = layouts.rosinality_generator_architecture(g_sd)
    notes = []
    _check_kernels(g_sd, arch, "g")
    target = _shapes(arch, "G")
    generator = layouts.convert(g_sd, layouts.rosinality_generator_pairs(arch), target, to_gankit=True,
                                what="generator")
    latent_avg = obj.get("latent_avg")
    if latent_avg is not None:
        generator["mapping.w_avg"] = latent_avg.detach().float().reshape(-1).clone()
    discriminator = None
    if isinstance(obj.get("d"), dict):
        try:
            _check_kernels(obj["d"], arch, "d")
            discriminator = layouts.convert(obj["d"], layouts.rosinality_discriminator_pairs(arch), _shapes(arch, "D"),
                                            to_gankit=True, what="discriminator")
        except GankitError as exc:
            notes.append(f"discriminator not imported: {exc}")
    args = obj.get("args")
    args = vars(args) if isinstance(args, argparse.Namespace) else args if isinstance(args, dict) else {}
    lr_mul = float(args.get("lr_mlp", 0.01))
    clamp = args.get("conv_clamp")  # written by gankit's export, not by rosinality
    clamp = float(clamp) if isinstance(clamp, (int, float)) and clamp > 0 else None
    ckpt = Checkpoint("rosinality", generator, discriminator, arch, map_lr_mul=lr_mul, conv_clamp=clamp, notes=notes)
    if latent_avg is None:
        ckpt.notes.append(f"no latent_avg in the file: the mean w was estimated from {W_AVG_SAMPLES:,} samples")
    return ckpt


def _check_kernels(sd: dict[str, torch.Tensor], arch: layouts.Architecture, net: str) -> None:
    for name, (owner, expected) in layouts.rosinality_kernels(arch).items():
        if owner == net and name in sd and not torch.allclose(sd[name].float(), expected):
            raise GankitError(f"{name} is not the [1, 3, 3, 1] FIR filter gankit's StyleGAN2 uses")


def _read_pickle(path: Path) -> Checkpoint:
    data = safe_pickle.load_nvlabs_pickle(path)
    if not isinstance(data, dict) or not any(isinstance(data.get(k), safe_pickle.Persisted) for k in ("G_ema", "G")):
        raise GankitError(f"{path} is not an NVlabs snapshot (no G_ema / G network in it)")
    G = data.get("G_ema") if isinstance(data.get("G_ema"), safe_pickle.Persisted) else data["G"]
    D = data.get("D") if isinstance(data.get("D"), safe_pickle.Persisted) else None
    ckpt = _from_nvlabs_tensors(safe_pickle.state_dict_of(G), None if D is None else safe_pickle.state_dict_of(D),
                                "nvlabs")
    fc0 = safe_pickle.find(G, "mapping.fc0")
    if fc0 is not None and isinstance(fc0.state.get("bias_gain"), (int, float)):
        ckpt.map_lr_mul = float(fc0.state["bias_gain"])
    layer = safe_pickle.find(G, "synthesis.b4.conv1")
    clamp = None if layer is None else layer.state.get("conv_clamp")
    ckpt.conv_clamp = float(clamp) if isinstance(clamp, (int, float)) else None
    mbstd = None if D is None else safe_pickle.find(D, "b4.mbstd")
    if mbstd is not None and isinstance(mbstd.state.get("group_size"), int):
        ckpt.mbstd_group = mbstd.state["group_size"]
    if "G_ema" not in data:
        ckpt.notes.append("no G_ema in the snapshot: imported the raw G")
    return ckpt


def _from_nvlabs_tensors(g_sd, d_sd, fmt: str) -> Checkpoint:
    arch = layouts.generator_architecture(g_sd)
    generator = {k: v.detach().float().clone() for k, v in g_sd.items()}
    notes, discriminator = [], None
    if d_sd is not None:
        why = layouts.discriminator_matches(d_sd, arch)
        if why is None:
            discriminator = {k: v.detach().float().clone() for k, v in d_sd.items()}
        else:
            notes.append(f"discriminator not imported: {why}")
    return Checkpoint(fmt, generator, discriminator, arch, conv_clamp=256.0 if fmt == "safetensors" else None,
                      notes=notes)


@lru_cache(maxsize=4)
def _net_shapes(arch: layouts.Architecture) -> dict[str, dict[str, torch.Size]]:
    """Every tensor's shape in gankit's G and D for ``arch`` (the networks built once)."""
    nets = build_networks(_config_values(arch, 0.01, None, 4))
    return {which: {k: v.shape for k, v in net.state_dict().items()} for which, net in nets.items()}


def _shapes(arch: layouts.Architecture, which: str) -> dict[str, torch.Size]:
    return _net_shapes(arch)[which]


# ---- building gankit networks -------------------------------------------------------------------
def _config_values(arch: layouts.Architecture, map_lr_mul: float, conv_clamp: float | None, mbstd: int) -> dict:
    return dict(resolution=arch.resolution, channels=arch.img_channels, nz=arch.z_dim, w_dim=arch.w_dim,
                map_layers=arch.map_layers, map_lr_mul=map_lr_mul, channel_base=arch.channel_base,
                channel_max=arch.channel_max, conv_clamp=conv_clamp or 0.0, mbstd_group=mbstd)


def _preset_for(resolution: int) -> str:
    return {256: "paper256", 512: "paper512", 1024: "paper1024"}.get(resolution, "small")


def stylegan2_config(ckpt: Checkpoint, source: str):
    from gankit.config import build_config
    from gankit.families.stylegan2 import StyleGAN2

    values = _config_values(ckpt.arch, ckpt.map_lr_mul, ckpt.conv_clamp, ckpt.mbstd_group)
    config = build_config(StyleGAN2.Config, preset=_preset_for(ckpt.arch.resolution),
                          # NCHW, the authors' layout: an imported model reproduces their outputs bit
                          # for bit (NHWC sums in another order); a run trained from it (--init) is NHWC
                          overrides={**values, "data": source, "channels_last": False})
    config.family = StyleGAN2.name
    return config


def build_networks(values: dict) -> dict[str, torch.nn.Module]:
    from gankit.config import build_config
    from gankit.families.stylegan2 import StyleGAN2

    config = build_config(StyleGAN2.Config, preset="small", overrides=values)
    shape = (values["channels"], values["resolution"], values["resolution"])
    return {"G": StyleGAN2.build_generator(config, shape), "D": StyleGAN2.build_discriminators(config, shape)["D"]}


def _load_into(net: torch.nn.Module, sd: dict[str, torch.Tensor], what: str) -> None:
    """Load ``sd`` into ``net`` exactly (the FIR filter buffers, constants rosinality does not store
    under gankit's names, are taken from ``net``); GankitError naming what does not fit."""
    own = net.state_dict()
    sd = {**{k: v for k, v in own.items() if k.endswith("resample_filter")}, **sd}
    missing = sorted(set(own) - set(sd))
    extra = sorted(set(sd) - set(own))
    if missing or extra:
        detail = (f"missing {missing[:3]}" if missing else "") + (" " if missing and extra else "") + \
                 (f"unexpected {extra[:3]}" if extra else "")
        raise GankitError(f"the {what} does not fit gankit's StyleGAN2 ({detail}): an architecture gankit cannot hold")
    for k, v in sd.items():
        if tuple(v.shape) != tuple(own[k].shape):
            raise GankitError(f"the {what}'s {k} has shape {tuple(v.shape)}, gankit's has {tuple(own[k].shape)}")
    net.load_state_dict(sd)


def _mean_w(G, n: int = W_AVG_SAMPLES) -> torch.Tensor:
    z = torch.randn(n, G.z_dim, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        return torch.cat([G.mapping(c, update_w_avg=False)[:, 0] for c in z.split(1000)]).mean(0)


# ---- import / export ------------------------------------------------------------------------------
def import_stylegan2(src: str | Path, out: str | Path, *, map_lr_mul: float | None = None) -> dict:
    """Read ``src`` and write a gankit export directory ``out`` (``config.json`` + ``model.safetensors``,
    the discriminator under ``extra.D.`` when the file has one). Returns a summary dict."""
    from gankit.model import Model
    from gankit.families.stylegan2 import StyleGAN2

    src, out = Path(src), Path(out)
    if out.exists() and any(out.iterdir()):
        raise GankitError(f"{out} exists and is not empty; pick a new --out (nothing is overwritten)")
    ckpt = read_checkpoint(src, map_lr_mul=map_lr_mul)
    config = stylegan2_config(ckpt, f"{IMPORTED_PREFIX}{src.name}")
    nets = build_networks(_config_values(ckpt.arch, ckpt.map_lr_mul, ckpt.conv_clamp, ckpt.mbstd_group))
    G = nets["G"]
    generator = dict(ckpt.generator)
    if "mapping.w_avg" not in generator:
        generator["mapping.w_avg"] = torch.zeros(ckpt.arch.w_dim)
        _load_into(G, generator, "generator")
        G.mapping.w_avg.copy_(_mean_w(G))
    else:
        _load_into(G, generator, "generator")
    model = Model(StyleGAN2, config, G.eval().requires_grad_(False), source=src, step=None, ema=True)
    if ckpt.discriminator is not None:
        _load_into(nets["D"], ckpt.discriminator, "discriminator")
        model.extra["D"] = nets["D"].eval().requires_grad_(False)
    model.save_pretrained(out)
    summary = {"source": str(src), "sha256": _sha256(src), "format": ckpt.format, "resolution": ckpt.arch.resolution,
               "z_dim": ckpt.arch.z_dim, "w_dim": ckpt.arch.w_dim, "map_layers": ckpt.arch.map_layers,
               "channel_base": ckpt.arch.channel_base, "channel_max": ckpt.arch.channel_max,
               "map_lr_mul": ckpt.map_lr_mul, "conv_clamp": ckpt.conv_clamp, "mbstd_group": ckpt.mbstd_group,
               "discriminator": ckpt.discriminator is not None, "notes": ckpt.notes}
    doc = json.loads((out / "config.json").read_text())
    doc["imported_from"] = summary

    write_text_atomic(out / "config.json", json.dumps(doc, indent=2, sort_keys=True))
    return summary


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def export_rosinality(model, path: str | Path, *, discriminator: dict[str, torch.Tensor] | None = None) -> Path:
    """Write ``model`` (a StyleGAN2 :class:`gankit.api.Model`) as a rosinality checkpoint: ``g_ema``,
    ``latent_avg`` and, given gankit-named ``discriminator`` tensors, ``d``; FIR kernels included, so
    rosinality's ``Generator(...).load_state_dict(ckpt["g_ema"])`` takes it as it is. Written
    atomically with ``torch.save`` (a file for other tools: gankit itself reads it back with
    weights_only)."""
    if model.family != "stylegan2":
        raise GankitError(f"--format rosinality exports StyleGAN2 models; this is {model.family}")
    sd = {k: v.detach().cpu() for k, v in model.generator.state_dict().items()}
    arch = layouts.generator_architecture(sd)
    if arch.z_dim != arch.w_dim:
        raise GankitError(f"rosinality's generator has z and w of one size; this model has z {arch.z_dim}, "
                          f"w {arch.w_dim}")
    shapes = _rosinality_shapes(arch)
    g = layouts.convert(sd, layouts.rosinality_generator_pairs(arch), shapes, to_gankit=False, what="generator")
    kernels = layouts.rosinality_kernels(arch)
    g.update({k: v.clone() for k, (net, v) in kernels.items() if net == "g"})
    # args with the names rosinality's train.py gives them, so an import gets the mapping's rate
    # multiplier back (conv_clamp: gankit's own; rosinality has no clamp). A plain dict, not its
    # argparse Namespace: torch.load's default weights-only mode reads the file as it is
    config = getattr(model, "config", None)
    args = {"size": arch.resolution, "latent": arch.z_dim, "n_mlp": arch.map_layers,
            "lr_mlp": float(getattr(config, "map_lr_mul", 0.01)),
            "conv_clamp": float(getattr(config, "conv_clamp", 0.0) or 0.0)}
    doc = {"g_ema": g, "latent_avg": sd["mapping.w_avg"].clone(), "args": args}
    if discriminator is not None:
        d = layouts.convert(discriminator, layouts.rosinality_discriminator_pairs(arch), shapes, to_gankit=False,
                            what="discriminator")
        d.update({k: v.clone() for k, (net, v) in kernels.items() if net == "d"})
        doc["d"] = d
    path = Path(path)
    with atomic_target(path, durable=True) as tmp:
        torch.save(doc, tmp)
    return path


def _rosinality_shapes(arch: layouts.Architecture) -> dict[str, tuple[int, ...]]:
    """The shapes rosinality's modules give each tensor (from gankit's, by the few rules that differ)."""
    ours = {**{k: tuple(v) for k, v in _shapes(arch, "G").items()},
            **{f"D:{k}": tuple(v) for k, v in _shapes(arch, "D").items()}}
    out: dict[str, tuple[int, ...]] = {}
    for g_name, r_name in layouts.rosinality_generator_pairs(arch):
        shape = ours[g_name]
        if r_name.endswith(".conv.weight") or r_name == "input.input" or r_name.startswith("noises."):
            shape = (1, 1, *shape) if r_name.startswith("noises.") else (1, *shape)
        elif r_name.endswith(".noise.weight"):
            shape = (1,)
        elif r_name.startswith("to_rgb") and r_name.endswith(".bias") and ".modulation." not in r_name:
            shape = (1, shape[0], 1, 1)
        out[r_name] = shape
    for d_name, r_name in layouts.rosinality_discriminator_pairs(arch):
        out[r_name] = ours[f"D:{d_name}"]
    return out
