"""A restricted unpickler for NVlabs' StyleGAN2 snapshots (stylegan2-ada-pytorch, stylegan3).

Their ``network-snapshot-*.pkl`` files pickle the networks with ``torch_utils.persistence``:
each network is stored as a call ``_reconstruct_persistent_obj(meta)`` whose ``meta`` carries
the Python source of its module (``module_src``), the class name and the object's ``__dict__``.
Plain ``pickle.load`` imports that source and runs it: a file from a stranger can run any code.

:func:`load_nvlabs_pickle` resolves only a fixed list of globals: the persistence hook (replaced
by :class:`Persisted`, which keeps the class name and the state and drops the source unread),
PyTorch's tensor and parameter rebuilders (each storage is read by
``torch.load(weights_only=True)``), ``OrderedDict``, ``dnnlib.EasyDict`` (read as a plain dict)
and numpy scalars. Any other global ends the load with a :class:`~gankit.errors.GankitError` naming it.
"""

from __future__ import annotations

import collections
import io
import pickle
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from gankit.errors import GankitError


@dataclass
class Persisted:
    """A persistent object as stored: its class name and its ``__dict__``; never instantiated.
    ``source_bytes`` is the length of the module source that was skipped."""

    class_name: str
    state: dict
    source_bytes: int = 0
    version: int | None = None
    children: dict = field(default_factory=dict)


class EasyDict(dict):
    """``dnnlib.EasyDict`` read as data: a dict whose keys also read as attributes."""

    def __getattr__(self, name):
        try:
            return self[name]
        except KeyError:
            raise AttributeError(name) from None


def _reconstruct_persistent_obj(meta: dict) -> Persisted:
    source = meta.get("module_src") or ""
    state = meta.get("state")
    if meta.get("type") != "class" or not isinstance(state, dict):
        raise GankitError("unexpected persistent object in the pickle (not a class instance with a state dict)")
    return Persisted(str(meta.get("class_name")), dict(state), len(source), meta.get("version"))


def _load_storage(data: bytes):
    """A storage saved by ``torch.save`` inside the pickle, read with weights_only (no code)."""
    return torch.load(io.BytesIO(data), map_location="cpu", weights_only=True)


def _numpy_scalar(dtype, data=None):
    if data is None:  # numpy's own convention for object scalars: refuse
        raise GankitError("the pickle holds a numpy object scalar; refusing to read it")
    return np.frombuffer(data, dtype=dtype)[0].item()


def _rebuild_tensor(storage, offset, size, stride, requires_grad=False, backward_hooks=None, metadata=None):
    return torch._utils._rebuild_tensor_v2(storage, offset, size, stride, requires_grad, collections.OrderedDict())


def _rebuild_parameter(data, requires_grad, backward_hooks, *rest):
    return data.detach().clone()  # parameters are read as plain tensors


_ALLOWED: dict[tuple[str, str], Any] = {
    ("torch_utils.persistence", "_reconstruct_persistent_obj"): _reconstruct_persistent_obj,
    ("torch._utils", "_rebuild_tensor_v2"): _rebuild_tensor,
    ("torch._utils", "_rebuild_parameter"): _rebuild_parameter,
    ("torch._utils", "_rebuild_parameter_with_state"): _rebuild_parameter,
    ("torch.storage", "_load_from_bytes"): _load_storage,
    ("collections", "OrderedDict"): collections.OrderedDict,
    ("dnnlib.util", "EasyDict"): EasyDict,
    ("dnnlib", "EasyDict"): EasyDict,
    ("builtins", "set"): set,
    ("builtins", "frozenset"): frozenset,
    ("numpy", "dtype"): np.dtype,
    ("numpy.core.multiarray", "scalar"): _numpy_scalar,
    ("numpy._core.multiarray", "scalar"): _numpy_scalar,
}
_ALLOWED.update({("torch", name): getattr(torch, name) for name in (
    "FloatStorage", "HalfStorage", "BFloat16Storage", "DoubleStorage", "LongStorage", "IntStorage",
    "ShortStorage", "CharStorage", "ByteStorage", "BoolStorage", "float32", "float16", "bfloat16", "float64",
    "int64", "int32", "uint8", "bool")})


class _RestrictedUnpickler(pickle.Unpickler):
    def __init__(self, file, *, limit_bytes: int):
        super().__init__(file)
        self.limit_bytes = limit_bytes  # no storage holds more bytes than the file itself

    def find_class(self, module: str, name: str):
        found = _ALLOWED.get((module, name))
        if found is None:
            raise GankitError(f"refusing to load {module}.{name} from the pickle: gankit reads only tensors and "
                              f"plain data from .pkl files and never runs code stored in them")
        if module == "torch" and name.endswith("Storage"):
            return _sized(found, self.limit_bytes)
        return found


def _sized(storage_type, limit_bytes: int):
    """``storage_type`` that refuses more elements than the file has bytes (a 30-byte pickle calling
    FloatStorage(2**31) would otherwise take 8 GB; a real one stores its data in the file)."""

    def make(*args, **kwargs):
        if args and isinstance(args[0], int) and args[0] > limit_bytes:
            raise GankitError(f"the pickle asks for a storage of {args[0]:,} elements, more than the file holds")
        return storage_type(*args, **kwargs)

    return make

    def persistent_load(self, pid):
        raise GankitError("the pickle uses persistent ids (a torch.save file?): import it as a .pt file")


def load_nvlabs_pickle(path: str | Path) -> Any:
    """The contents of an NVlabs snapshot with every network as a :class:`Persisted` record."""
    path = Path(path)
    try:
        with open(path, "rb") as f:
            return _RestrictedUnpickler(f, limit_bytes=path.stat().st_size).load()
    except GankitError:
        raise
    except (pickle.UnpicklingError, EOFError, ValueError, TypeError, RuntimeError, AttributeError) as exc:
        raise GankitError(f"cannot read {path} as a StyleGAN2 .pkl snapshot: {str(exc).splitlines()[0]}") from None


def state_dict_of(obj: Persisted, prefix: str = "") -> dict[str, torch.Tensor]:
    """The ``state_dict`` a PyTorch module with this stored state would have: its parameters and
    persistent buffers, then its submodules', named as ``torch.nn.Module.state_dict`` names them."""
    state = obj.state
    out: dict[str, torch.Tensor] = {}
    skip = set(state.get("_non_persistent_buffers_set") or ())
    for name, value in (state.get("_parameters") or {}).items():
        if value is not None:
            out[prefix + name] = value
    for name, value in (state.get("_buffers") or {}).items():
        if value is not None and name not in skip:
            out[prefix + name] = value
    for name, child in (state.get("_modules") or {}).items():
        if isinstance(child, Persisted):
            out.update(state_dict_of(child, f"{prefix}{name}."))
        elif child is not None:
            raise GankitError(f"unexpected submodule {prefix}{name} of type {type(child).__name__} in the pickle")
    return out


def find(obj: Persisted, path: str) -> Persisted | None:
    """The stored submodule at a dotted path (``"synthesis.b4.conv1"``), or None."""
    for part in path.split(".") if path else ():
        modules = obj.state.get("_modules") or {}
        child = modules.get(part)
        if not isinstance(child, Persisted):
            return None
        obj = child
    return obj
