"""The training loop, written once for every family.

Per step: reseed the random generators from (seed, rank, step); run the family's phases
(each: pick the trainable modules, zero their grads, compute the loss under autocast,
backward, optimizer step); update the generator EMA. Around it: logging, fixed-noise
snapshots, checkpoints (on an interval, at the end, and on Ctrl-C / SIGTERM) and exact resume.
"""

from __future__ import annotations

import math
import signal
import sys
import threading
import time
from pathlib import Path
from typing import Callable

import torch
from torch import nn

from gankit.config import TrainConfig
from gankit.data import Dataset, to_signed
from gankit.engine import checkpoint as ckpt
from gankit.engine.batches import BatchOrder
from gankit.engine.ema import EMA_KEY, ema_beta, make_ema, update_ema
from gankit.engine.monitor import MetricsLog, ProgressBar
from gankit.engine.runtime import Runtime, autocast, check_compile_toolchain, derive_seed, resolve_precision
from gankit.errors import DivergedError, GankitError
from gankit.families.base import Batch, Family, Phase, sample_images
from gankit.nn.optim import load_state as load_optimizer_state

StepCallback = Callable[["Trainer", int], None]


class Trainer:
    """Trains one family instance on one dataset into ``run_dir``."""

    def __init__(self, family_cls: type[Family], config: TrainConfig, dataset: Dataset, run_dir: Path,
                 rt: Runtime, *, on_step: StepCallback | None = None, quiet: bool = False):
        self.family_cls, self.config, self.dataset = family_cls, config, dataset
        self.run_dir, self.rt, self.on_step, self.quiet = Path(run_dir), rt, on_step, quiet
        self.device = rt.device
        self.last_batch: Batch | None = None  # the batch the step's last data phase drew (`Phase.same_batch`)
        if rt.distributed and family_cls.one_process_why:
            raise GankitError(f"{family_cls.name} trains in one process ({family_cls.one_process_why}): "
                              f"run it without torchrun")
        torch.manual_seed(derive_seed(config.seed, 0x1417))  # same initial weights on every rank
        self.family = family_cls(config, dataset.shape)
        self.family.bind_data(dataset)
        for name, net in self.family.nets.items():
            net.to(self.device)
            if config.channels_last and dataset.kind != "points":
                net.to(memory_format=torch.channels_last)
        for module in self.family.aux.values():
            module.to(self.device)
        # Module.to() keeps the Parameter objects, so the optimizers built above still hold them.
        if config.compile:
            check_compile_toolchain(self.device)
        views = wrap_nets(self.family.nets, config, rt, find_unused=family_cls.unused_parameters)
        self.ema = make_ema(self.family.nets[family_cls.generator_key]) if config.ema else None
        self.phases: list[Phase] = self.family.phases()
        # What each phase's losses see: its own modules through DDP/compile, the others frozen;
        # a phase that backpropagates through a gradient sees them uncompiled (Phase.double_backward).
        self.phase_views = {}
        for phase in self.phases:
            eager = "_eager" if phase.double_backward else ""
            self.phase_views[phase.name] = {
                name: views[("trainable" if name in phase.modules else "frozen") + eager][name]
                for name in self.family.nets}
        self.step = 0
        self.batches_seen = 0
        self.order = BatchOrder(len(dataset), config.batch_size, config.seed, rt.rank, rt.world_size)
        self.data = dataset.data.to(self.device) if _fits_on(self.device, dataset.data) else dataset.data
        self.labels = None if dataset.labels is None else dataset.labels.to(self.data.device)
        self.attributes = None if dataset.attributes is None else dataset.attributes.to(self.data.device)
        # Domain B of two-domain data: paired items share A's indices; an unpaired set has its
        # own order, a pure function of the same batch count (so resume stays exact).
        self.data_b = None if dataset.data_b is None else dataset.data_b.to(self.data.device)
        self.order_b = None
        if dataset.kind == "unpaired":
            self.order_b = BatchOrder(len(dataset.data_b), config.batch_size, derive_seed(config.seed, 0xB),
                                      rt.rank, rt.world_size)
        self.stop_signal: int | None = None
        self.rollbacks = 0  # on_divergence=rollback: how many so far
        self.last_rollback_to: int | None = None  # the step the last rollback in this process went back to
        # auto -> what this hardware does best for this family and data
        self.precision = resolve_precision(config.precision, self.device, bf16_on_cpu=family_cls.bf16_on_cpu,
                                           data_kind=dataset.kind)
        self.scaler = torch.amp.GradScaler(self.device.type, enabled=self.precision == "fp16")

    # ---- state --------------------------------------------------------------------------------
    def state_tensors(self) -> tuple[dict[str, torch.Tensor], dict]:
        tensors: dict[str, torch.Tensor] = {}
        for name, net in self.named_nets().items():
            tensors.update({f"net.{name}.{k}": v for k, v in net.state_dict().items()})
        opt_meta = {}
        for name, opt in self.family.optimizers.items():
            t, m = ckpt.flatten_optimizer(opt, f"opt.{name}")
            tensors.update(t)
            opt_meta[name] = m
        meta = {
            "family": self.family_cls.name,
            "config": self.config.to_dict(),
            "batches_seen": self.batches_seen,
            "data_position": self.order.position(self.batches_seen),  # images drawn, all ranks together
            "data_position_b": None if self.order_b is None else self.order_b.position(self.batches_seen),
            "optimizers": opt_meta,
            "scaler": self.scaler.state_dict() if self.scaler.is_enabled() else None,
            "data": {"source": self.dataset.source, "count": len(self.dataset), "shape": list(self.dataset.shape),
                     "kind": self.dataset.kind, "classes": self.dataset.classes,
                     "skipped": len(self.dataset.skipped)},
            "world_size": self.rt.world_size,
            "precision": self.precision,  # what precision=auto resolved to on this machine
            "lr_scale": self.family.lr_scale,  # the rollbacks' product of rollback_lr_factor
            "rollbacks": self.rollbacks,
        }
        return tensors, meta

    def load_state(self, tensors: dict[str, torch.Tensor], meta: dict) -> None:
        for name, net in self.named_nets().items():
            net.load_state_dict(ckpt.prefixed(tensors, f"net.{name}"))
        for name, opt in self.family.optimizers.items():
            load_optimizer_state(opt, ckpt.unflatten_optimizer(tensors, meta["optimizers"][name], f"opt.{name}"))
        if meta.get("scaler") and self.scaler.is_enabled():
            self.scaler.load_state_dict(meta["scaler"])
        self.step = int(meta["step"])
        self.batches_seen = int(meta["batches_seen"])
        # the stream position reached (older checkpoints: from their process count and batch size)
        drawn = self.batches_seen * int(meta["config"].get("batch_size", self.config.batch_size)) \
            * int(meta.get("world_size", 1))
        self.order.resume_at(self.batches_seen, int(meta.get("data_position", drawn)))
        if self.order_b is not None:
            self.order_b.resume_at(self.batches_seen, int(meta.get("data_position_b") or drawn))
        self.family.lr_scale = float(meta.get("lr_scale", 1.0))
        self.rollbacks = int(meta.get("rollbacks", 0))
        self._apply_new_learning_rates(meta["config"])

    def _apply_new_learning_rates(self, saved: dict) -> None:
        """``--resume --set lr_g=...``: the optimizers hold the saved rates, so a rate changed since
        (``lr_<optimizer>``, or ``lr`` for all) scales its optimizer's groups by new / saved (keeping
        any rollback factor and per-group ratio, e.g. StyleGAN2's lazy-regularisation one)."""
        for name, opt in self.family.optimizers.items():
            key = next((k for k in (f"lr_{name.lower()}", "lr") if hasattr(self.config, k)), None)
            old, new = saved.get(key), getattr(self.config, key, None) if key else None
            if old and new is not None and new != old:
                for group in opt.param_groups:
                    group["lr"] *= new / old

    def load_init(self, nets: dict[str, dict[str, torch.Tensor]]) -> None:
        """Start from other weights (``gankit train --init``): every network found in ``nets`` (by
        name: G, D, G_ema, ...) is loaded exactly; the others keep their fresh initialisation. The
        EMA starts from the EMA of the source, else from its G."""
        for name, net in self.named_nets().items():
            sd = nets.get(name)
            if sd is None and name == EMA_KEY:
                sd = nets.get(self.family_cls.generator_key)
            if sd is not None:
                net.load_state_dict(sd)

    def named_nets(self) -> dict[str, nn.Module]:
        nets = dict(self.family.nets) | self.family.aux
        if self.ema is not None:
            nets[EMA_KEY] = self.ema
        return nets

    def save(self) -> Path | None:
        """Checkpoint the run, unless its weights stopped being finite: a diverged state is never
        written, so it never rotates a good checkpoint away (:class:`DivergedError` instead)."""
        path = None
        bad_net = self.nonfinite_weights() if self.rt.is_main else None
        if self.rt.any_flag(bad_net is not None):  # a collective: every rank takes part
            self.diverged(f"non-finite weights in {bad_net or 'the main rank'}")
        in_sync = self.ranks_in_sync()  # a collective: every rank takes part
        if self.rt.is_main:
            tensors, meta = self.state_tensors()
            meta["ranks_in_sync"] = in_sync
            path = ckpt.save_checkpoint(self.run_dir, self.step, tensors, meta, self.config.keep_checkpoints)
        self.rt.barrier()
        return path

    def nonfinite_weights(self) -> str | None:
        """The first network with a NaN or infinite parameter or buffer, or None (one host sync)."""
        for name, net in self.named_nets().items():
            flags = [t.isfinite().all() for t in net.state_dict().values() if t.is_floating_point()]
            if flags and not bool(torch.stack(flags).all()):
                return name
        return None

    def diverged(self, what: str) -> None:
        """Stop with one line: what diverged, at which step, the last good checkpoint, what to try."""
        found = ckpt.list_checkpoints(self.run_dir)
        good = f"the last good checkpoint is {found[-1]}" if found else "no checkpoint was written before it"
        raise DivergedError(
            f"training diverged at step {self.step} ({what}); nothing was saved from that state and {good}. "
            f"Try lower learning rates (--set lr_g=... --set lr_d=...), --set reg=r1, or --set precision=fp32")

    def ranks_in_sync(self) -> bool:
        """Under DDP every rank must hold the same weights; compare a checksum across ranks."""
        if not self.rt.distributed:
            return True
        import torch.distributed as dist

        with torch.no_grad():
            total = torch.zeros(2, dtype=torch.float64, device=self.device)
            for i, p in enumerate(p for net in self.family.nets.values() for p in net.parameters()):
                total[0] += p.double().sum()
                total[1] += p.double().abs().sum() * (1 + i % 7)
        gathered = [torch.zeros_like(total) for _ in range(self.rt.world_size)]
        dist.all_gather(gathered, total)
        return all(torch.equal(g, gathered[0]) for g in gathered)

    # ---- one step -----------------------------------------------------------------------------
    def next_batch(self) -> Batch:
        k = self.batches_seen
        idx = self.order.indices(k).to(self.data.device)
        self.batches_seen += 1
        if self.dataset.kind == "points":
            return Batch(self.data[idx].to(self.device, non_blocking=True),
                         None if self.labels is None else self.labels[idx].to(self.device))
        flip = torch.rand(len(idx), device=self.device) < 0.5 if self.config.hflip else None
        x = self._images(self.data, idx, flip)
        x_b = None
        if self.data_b is not None:
            if self.order_b is None:  # paired: the same items, flipped alike
                x_b = self._images(self.data_b, idx, flip)
            else:
                flip_b = torch.rand(len(idx), device=self.device) < 0.5 if self.config.hflip else None
                x_b = self._images(self.data_b, self.order_b.indices(k).to(self.data.device), flip_b)
        y = None if self.labels is None else self.labels[idx].to(self.device)
        attrs = None if self.attributes is None else self.attributes[idx].to(self.device)
        return Batch(x, y, x_b=x_b, attrs=attrs, text=self._captions(idx))

    def _captions(self, idx: torch.Tensor) -> torch.Tensor | None:
        """One caption per item, drawn among its own (torch's generator, seeded per step)."""
        ds = self.dataset
        if ds.text is None:
            return None
        idx = idx.cpu()
        pick = (torch.rand(len(idx)) * ds.text_count[idx]).long()
        return ds.text[idx, pick].to(self.device)

    def _images(self, data: torch.Tensor, idx: torch.Tensor, flip: torch.Tensor | None) -> torch.Tensor:
        x = to_signed(data[idx].to(self.device, non_blocking=True))
        if flip is not None:
            x = torch.where(flip[:, None, None, None], x.flip(3), x)
        if self.config.channels_last:
            x = x.contiguous(memory_format=torch.channels_last)
        return x

    def run_phase(self, phase: Phase, logs: dict[str, torch.Tensor]) -> None:
        # Only the phase's own modules go through DDP (their gradients are all-reduced); the
        # others act as frozen functions, so no DDP reducer ever waits for gradients that a
        # phase does not produce (G's step backpropagates through D but never updates it).
        for name, net in self.family.nets.items():
            net.requires_grad_(name in phase.modules)
        self.family.train_nets = self.phase_views[phase.name]
        opt = self.family.optimizers[phase.optimizer]
        for _ in range(phase.repeats):
            if phase.same_batch and self.last_batch is not None:
                batch = self.last_batch
            else:
                batch = self.last_batch = self.next_batch() if phase.uses_data else None
            opt.zero_grad(set_to_none=True)
            with autocast(self.device, "fp32" if phase.fp32 else self.precision):
                loss, values = phase.loss(batch)
            self.scaler.scale(loss).backward()
            self.scaler.step(opt)
            self.scaler.update()
            if phase.after_step is not None:
                phase.after_step()
            for k, v in values.items():
                logs[k] = logs.get(k, 0.0) + v.float() / phase.repeats

    def train_step(self) -> dict[str, torch.Tensor]:
        torch.manual_seed(derive_seed(self.config.seed, self.rt.rank, self.step))
        logs: dict[str, torch.Tensor] = {}
        self.last_batch = None
        self.family.decay_learning_rates(self.step)
        self.family.begin_step(self.step)
        for phase in self.phases:
            if phase.runs_at(self.step):
                self.run_phase(phase, logs)
        self.step += 1
        if self.ema is not None:
            update_ema(self.ema, self.family.nets[self.family_cls.generator_key],
                       ema_beta(self.config.ema_decay, self.step - self.family.ema_restart(self.step)))
        return logs

    # ---- the loop -----------------------------------------------------------------------------
    def fit(self, log: MetricsLog | None) -> str:
        """Train to ``config.steps``; returns "finished" or "interrupted"."""
        c = self.config
        bar = ProgressBar(c.steps, self.step, enabled=self.rt.is_main and not self.quiet,
                          description=f"{self.family_cls.name}")
        # per key: a phase run every k-th step logs only on those steps, hence counts per key
        acc = {"sums": {}, "counts": {}, "images": 0, "tick": time.perf_counter(), "from_step": self.step}
        self.check_evaluation()
        with _stop_on_signals(self):
            if self.step == 0 and self.rt.is_main:
                self.snapshot(log)
            while self.step < c.steps:
                try:
                    stopped = self._fit_step(log, bar, acc)
                except DivergedError as exc:
                    self.roll_back(exc, log)  # or re-raise: on_divergence=stop, or no good checkpoint
                    acc.update(sums={}, counts={}, images=0, tick=time.perf_counter(), from_step=self.step)
                    continue
                if stopped:
                    bar.close()
                    return "interrupted"
        bar.close()
        # every rank joins save()'s collectives; rank 0's folder decides (and alone writes)
        if self.step >= c.steps and self.rt.any_flag(self.rt.is_main and not ckpt.list_checkpoints(self.run_dir)):
            self.save()
        return "finished"

    def _fit_step(self, log: MetricsLog | None, bar: ProgressBar, acc: dict) -> bool:
        """One step of the loop with its logging, pictures, evaluation and checkpoint; True when a
        signal asked to stop (the checkpoint is written)."""
        c = self.config
        batches_before = self.batches_seen
        for k, v in self.train_step().items():
            acc["sums"][k] = acc["sums"].get(k, 0.0) + v
            acc["counts"][k] = acc["counts"].get(k, 0) + 1
        acc["images"] += (self.batches_seen - batches_before) * c.batch_size * self.rt.world_size
        if self.step % c.log_every == 0 or self.step == c.steps:
            elapsed = time.perf_counter() - acc["tick"]
            values = {k: float(v) / acc["counts"][k] for k, v in acc["sums"].items()}
            bad = sorted(k for k, v in values.items() if not math.isfinite(v))
            if self.rt.any_flag(bool(bad)):
                if log is not None:
                    log.log(self.step, values)
                self.diverged(", ".join(f"{k} = {values[k]}" for k in bad) or "on another rank")
            if acc["images"]:
                values["img_per_s"] = acc["images"] / max(elapsed, 1e-9)
                values["epoch"] = self.order.epoch_of(self.batches_seen)
                speed = {"img/s": values["img_per_s"]}
            else:  # a family that draws no batches (SinGAN's one image): steps per second
                values["steps_per_s"] = (self.step - acc.get("from_step", 0)) / max(elapsed, 1e-9)
                speed = {"it/s": values["steps_per_s"]}
            if log is not None:
                log.log(self.step, values)
            bar.update(self.step, {k: v for k, v in values.items() if k.startswith("loss/")} | speed)
            acc.update(sums={}, counts={}, images=0, tick=time.perf_counter(), from_step=self.step)
        if self.rt.is_main and (self.step % c.snapshot_every == 0 or self.step == c.steps):
            self.snapshot(log)
        if self.rt.is_main and c.eval_every and (self.step % c.eval_every == 0 or self.step == c.steps):
            self.evaluate(log)
        stopping = self.rt.any_flag(self.stop_signal is not None)
        if self.step % c.checkpoint_every == 0 or self.step == c.steps or stopping:
            self.save()
        if self.on_step is not None:
            self.on_step(self, self.step)
        return stopping

    def roll_back(self, exc: DivergedError, log: MetricsLog | None) -> None:
        """``on_divergence=rollback``: reload the newest checkpoint, multiply every learning rate by
        ``rollback_lr_factor`` and go on, at most ``max_rollbacks`` times; each rollback is a
        ``rollback`` record in metrics.jsonl. Otherwise re-raise ``exc``.

        A checkpoint can be finite yet already blowing up (weights and Adam moments grown huge a
        few steps before the overflow: ``bench/rollback.py``). So when the run diverges again
        before writing a new checkpoint, the next rollback goes one checkpoint further back; the
        ones passed over are kept as ``checkpoints/abandoned_step_...``, never deleted."""
        c = self.config
        done = self.rollbacks
        found = ckpt.list_checkpoints(self.run_dir)
        if self.last_rollback_to is not None and found and ckpt.step_of(found[-1]) <= self.last_rollback_to:
            older = [p for p in found if ckpt.step_of(p) < self.last_rollback_to]
            found = older or found[:1]  # nothing older: the oldest again
        if c.on_divergence != "rollback" or done >= c.max_rollbacks or not found:
            if c.on_divergence == "rollback":
                why = "no checkpoint to roll back to" if not found else f"after {done} rollbacks of the {c.max_rollbacks} allowed"
                raise DivergedError(f"{exc} ({why})") from None
            raise exc
        diverged_at = self.step
        target = found[-1]
        if self.rt.is_main:
            for newer in ckpt.list_checkpoints(self.run_dir):
                if ckpt.step_of(newer) > ckpt.step_of(target):
                    ckpt.set_aside(newer, ckpt.ABANDONED_PREFIX)
        self.rt.barrier()
        scale = self.family.lr_scale * c.rollback_lr_factor  # the rates now, lowered once more
        tensors, meta = ckpt.load_checkpoint(target)
        self.load_state(tensors, meta)  # its rates were saved with its own lr_scale
        self.last_rollback_to = self.step
        for opt in self.family.optimizers.values():
            for group in opt.param_groups:
                group["lr"] *= scale / self.family.lr_scale
        self.family.lr_scale = scale  # also for the families that set their rates every step
        self.rollbacks = done + 1
        if log is not None:
            log.truncate_after(self.step)  # the diverged stretch; the rollback record says what happened
            log.log(self.step, {"rollback": self.rollbacks, "diverged_at": diverged_at,
                                "lr_factor": self.family.lr_scale})
        if self.rt.is_main:
            print(f"warning: {exc}; rolled back to step {self.step}, learning rates now x{scale:g} "
                  f"(rollback {self.rollbacks} of {c.max_rollbacks})", file=sys.stderr, flush=True)

    # ---- quality metrics ------------------------------------------------------------------------
    def check_evaluation(self) -> None:
        """Fail before training, not at the first evaluation, when the metrics cannot run offline."""
        if not self.config.eval_every:
            return
        from gankit.metrics.evaluate import parse_metrics
        from gankit.metrics.features import resolve_features

        wanted = parse_metrics(self.config.eval_metrics)
        if self.family_cls.translates:
            raise GankitError(f"--eval-every does not apply to {self.family_cls.name}, which translates images; "
                              f"measure it with `gankit bench translate`")
        if self.dataset.kind != "image":
            raise GankitError("--eval-every measures images; 2-D point runs use `gankit bench modes`")
        if set(wanted) - {"swd"}:
            resolve_features(self.config.eval_features, channels=self.dataset.shape[0],
                             resolution=self.config.resolution, data=self.config.data)

    def evaluate(self, log: MetricsLog | None) -> dict:
        """FID/KID/... of the sampling generator against the training data, as metric/<name>."""
        from gankit.model import Model
        from gankit.metrics.evaluate import evaluate

        c = self.config
        model = Model(self.family_cls, c, self.sampling_generator(), source=self.run_dir, step=self.step)
        # Fewer KID subsets and SWD images than `gankit evaluate`: a curve, not a final number.
        result = evaluate(model, c.data, where=c.where, metrics=c.eval_metrics, features=c.eval_features,
                          n=c.eval_n, seed=c.seed, kid_subsets=10, kid_subset_size=min(1000, c.eval_n),
                          swd_max_images=512)
        values = {f"metric/{k}": float(v) for k, v in result.items()
                  if k in ("fid", "kid", "is", "precision", "recall", "swd")}
        if log is not None and values:
            log.log(self.step, values)
        return values

    # ---- pictures -----------------------------------------------------------------------------
    def fixed_batch(self, n: int) -> Batch:
        """The first ``n`` items of the data, unflipped: the fixed inputs of translation snapshots
        (as many of each domain: an unpaired domain B may hold fewer items than ``n``)."""
        ds = self.dataset
        n = min(n, len(ds.data), len(ds.data_b)) if ds.data_b is not None else n
        return Batch(to_signed(ds.data[:n]).to(self.device), _first(ds.labels, n),
                     x_b=None if ds.data_b is None else to_signed(ds.data_b[:n]).to(self.device),
                     attrs=None if ds.attributes is None else ds.attributes[:n].to(self.device),
                     text=None if ds.text is None else ds.text[:n, 0].to(self.device))

    def sampling_generator(self) -> nn.Module:
        return self.ema if self.ema is not None else self.family.nets[self.family_cls.generator_key]

    def snapshot(self, log: MetricsLog | None) -> Path:
        from gankit.viz import render_samples, save_image

        if self.family_cls.translates:
            picture = self.family_cls.snapshot_picture(self.sampling_generator(), self.config,
                                                       self.fixed_batch(self.config.n_snapshot))
        else:
            z, y, nrow = self.family_cls.snapshot_inputs(self.config, self.config.n_snapshot, self.config.seed)
            samples = sample_images(self.family_cls, self.sampling_generator(), self.config, len(z), z=z, cond=y,
                                    seed=self.config.seed)
            extra = {}
            if self.dataset.kind == "points":
                extra["reference"] = self.dataset.data[:2000]
            picture = render_samples(samples, nrow=nrow or None, **extra)
        path = self.run_dir / "samples" / f"step_{self.step:08d}.png"
        save_image(picture, path)
        if log is not None:
            log.image("samples", picture, self.step)
        return path


def _first(t: torch.Tensor | None, n: int) -> torch.Tensor | None:
    return None if t is None else t[:n]


def wrap_nets(nets: dict[str, nn.Module], config: TrainConfig, rt: Runtime, *,
              find_unused: bool = False) -> dict[str, dict[str, nn.Module]]:
    """Views of the nets: ``frozen`` and ``trainable`` (DDP-wrapped when distributed;
    ``find_unused``: some parameters may get no gradient in a step), both ``torch.compile``d when
    asked, and ``frozen_eager`` / ``trainable_eager``, the same never compiled, for the phases that
    backpropagate through a gradient (torch.compile's AOTAutograd has no double backward)."""
    frozen, trainable = dict(nets), dict(nets)
    if rt.distributed:
        from torch.nn.parallel import DistributedDataParallel as DDP

        import inspect

        ids = [rt.device.index] if rt.device.type == "cuda" else None
        # No buffer sync in forward: BatchNorm statistics stay per process (as with SyncBN
        # off); rank 0's are the ones saved. torch >= 2.14 renamed the option.
        params = inspect.signature(DDP.__init__).parameters
        no_sync = {"forward_sync_buffers": False} if "forward_sync_buffers" in params else {"broadcast_buffers": False}
        trainable = {k: DDP(v, device_ids=ids, find_unused_parameters=find_unused, **no_sync)
                     for k, v in nets.items() if any(p.requires_grad for p in v.parameters())}
    views = {"frozen": frozen, "trainable": trainable, "frozen_eager": frozen, "trainable_eager": trainable}
    if config.compile:
        views["frozen"] = {k: torch.compile(v) for k, v in frozen.items()}
        views["trainable"] = {k: torch.compile(v) for k, v in trainable.items()}
    return views


def _fits_on(device: torch.device, data: torch.Tensor) -> bool:
    """Keep the whole (uint8) dataset on the device when it is small: no per-step transfers."""
    return device.type == "cpu" or data.numel() * data.element_size() < 2 * 1024**3


class _stop_on_signals:
    """Ctrl-C and SIGTERM ask the loop to checkpoint and stop after the current step.
    A second Ctrl-C stops at once."""

    def __init__(self, trainer: Trainer):
        self.trainer = trainer
        self.previous: dict[int, object] = {}

    def _handler(self, signum, frame):
        if self.trainer.stop_signal is not None and signum == signal.SIGINT:
            raise KeyboardInterrupt
        self.trainer.stop_signal = signum
        if self.trainer.rt.is_main and not self.trainer.quiet:
            print("\nstopping when this step ends: saving a checkpoint "  # its number: in the line that follows
                  "(Ctrl-C again to quit at once)", file=sys.stderr, flush=True)

    def __enter__(self):
        if threading.current_thread() is threading.main_thread():
            for sig in (signal.SIGINT, signal.SIGTERM):
                self.previous[sig] = signal.signal(sig, self._handler)
        return self

    def __exit__(self, *exc):
        for sig, handler in self.previous.items():
            signal.signal(sig, handler)
        return False
