"""Devices, precision and distributed training in one place.

Everything here does nothing when unused: a single CPU process gets no process group, a null
autocast context and no gradient scaler (the habit of nanoGPT's ``nullcontext`` on CPU).
"""

from __future__ import annotations

import contextlib
import functools
import os
from dataclasses import dataclass

import numpy as np
import torch
import torch.distributed as dist

from gankit.errors import GankitError


@dataclass(frozen=True)
class Runtime:
    device: torch.device
    rank: int = 0
    world_size: int = 1
    local_rank: int = 0

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    @property
    def distributed(self) -> bool:
        return self.world_size > 1

    def barrier(self) -> None:
        if self.distributed:
            dist.barrier()

    def any_flag(self, flag: bool) -> bool:
        """True on every rank if ``flag`` is set on any rank (so all ranks stop at the same step)."""
        if not self.distributed:
            return flag
        t = torch.tensor([1.0 if flag else 0.0], device=self.device if self.device.type == "cuda" else "cpu")
        dist.all_reduce(t, op=dist.ReduceOp.MAX)
        return bool(t.item())


def resolve_device(name: str, local_rank: int = 0) -> torch.device:
    """``auto`` picks CUDA when present (one GPU per process under torchrun), else MPS, else CPU."""
    if name == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda", local_rank % torch.cuda.device_count())
        if getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available():
            return torch.device("mps")
        return torch.device("cpu")
    try:
        device = torch.device(name)
    except RuntimeError:
        raise GankitError(f"unknown device {name!r}; use auto, cpu, cuda, cuda:N or mps") from None
    if device.type == "cuda" and not torch.cuda.is_available():
        raise GankitError(f"device {name!r} asked for but CUDA is not available; use --set device=cpu")
    mps = getattr(torch.backends, "mps", None)
    if device.type == "mps" and not (mps is not None and mps.is_available()):
        raise GankitError(f"device {name!r} asked for but this machine has no Apple GPU (MPS); use --set device=cpu")
    return device


def setup_runtime(device_name: str = "auto") -> Runtime:
    """Join the process group when launched by torchrun (WORLD_SIZE > 1): gloo on CPU, nccl on GPU."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    rank = int(os.environ.get("RANK", "0"))
    local_rank = int(os.environ.get("LOCAL_RANK", "0"))
    device = resolve_device(device_name, local_rank)
    if world > 1 and not dist.is_initialized():
        if device.type == "cuda":
            torch.cuda.set_device(device)
        dist.init_process_group(backend="nccl" if device.type == "cuda" else "gloo")
    return Runtime(device=device, rank=rank, world_size=world, local_rank=local_rank)


def teardown_runtime(rt: Runtime) -> None:
    if rt.distributed and dist.is_initialized():
        dist.destroy_process_group()


def bf16_matrix_units(device: torch.device) -> bool:
    """Whether ``device`` multiplies bfloat16 matrices in hardware: Ampere or newer GPUs; CPUs
    with AMX or AVX512-BF16 (read from /proc/cpuinfo; elsewhere, and on AVX2-only CPUs, where
    bf16 is emulated and far slower than fp32, False)."""
    if device.type == "cuda":
        return torch.cuda.is_bf16_supported() and torch.cuda.get_device_capability(device)[0] >= 8
    if device.type != "cpu":
        return False
    return bool({"amx_bf16", "avx512_bf16"} & cpu_flags())


@functools.lru_cache(maxsize=1)
def cpu_flags() -> frozenset[str]:
    """The CPU's feature flags from /proc/cpuinfo (empty where there is none)."""
    try:
        with open("/proc/cpuinfo") as f:
            return frozenset(next((line.split(":", 1)[1].split() for line in f if line.startswith("flags")), []))
    except OSError:
        return frozenset()


def resolve_precision(precision: str, device: torch.device, *, bf16_on_cpu: bool = True,
                      data_kind: str = "image") -> str:
    """``auto`` becomes bf16 autocast where the hardware has bf16 matrix units, else fp32; an
    explicit fp32 / bf16 / fp16 is kept. ``auto`` stays fp32 on the CPU for ``bf16_on_cpu=False``
    (a family measured slower in bf16 there, :attr:`gankit.families.base.Family.bf16_on_cpu`) and
    everywhere for 2-D points (the mode benchmarks' Gaussians are narrower than bf16's 8 bits of
    mantissa resolve)."""
    if precision != "auto":
        return precision
    if data_kind == "points" or (device.type == "cpu" and not bf16_on_cpu):
        return "fp32"
    return "bf16" if bf16_matrix_units(device) else "fp32"


def check_compile_toolchain(device: torch.device) -> None:
    """``compile=true`` compiles with inductor, which builds C++ on a CPU and Triton kernels on a
    GPU: fail before training (a user error) where that toolchain is missing, instead of deep in
    the first step."""
    if device.type == "cpu":
        try:
            from torch._inductor.cpp_builder import get_cpp_compiler
        except ImportError:  # another torch layout: let torch.compile speak for itself
            return
        try:
            get_cpp_compiler()
        except Exception as err:  # torch._inductor.exc.InvalidCxxCompiler and kin
            raise GankitError("compile=true on a CPU needs a C++ compiler for torch.compile and none works "
                              f"({type(err).__name__}): install g++ (or set CXX), or drop compile") from None
    elif device.type == "cuda":
        from torch.utils._triton import has_triton

        if not has_triton():
            raise GankitError("compile=true on a GPU needs Triton for torch.compile: pip install triton, or drop compile")


def autocast(device: torch.device, precision: str):
    """Mixed precision where asked (a resolved precision: fp32, bf16 or fp16); fp32 is a no-op."""
    if precision == "fp32":
        return contextlib.nullcontext()
    dtype = torch.bfloat16 if precision == "bf16" else torch.float16
    return torch.autocast(device_type=device.type, dtype=dtype)


def derive_seed(*parts: int) -> int:
    """A well-mixed 63-bit seed from integers (numpy's SeedSequence hash), e.g. (seed, rank, step).

    The engine reseeds torch's generators with ``derive_seed(seed, rank, step)`` before each
    step, so the random stream of step k depends on nothing but k: a resumed run draws the
    same noise as an uninterrupted one without saving generator states.
    """
    state = np.random.SeedSequence([int(p) & 0xFFFFFFFF for p in parts]).generate_state(2, dtype=np.uint32)
    return int((int(state[0]) << 31) ^ int(state[1])) & ((1 << 63) - 1)
