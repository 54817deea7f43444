"""The step loop shared by every phase: AdamW + warm-up/cosine, clipping, AMP, EMA, DDP, checkpoints, NaN stop.

A ``Phase`` says what to optimise (an objective module, its parameters, the paths of each step, what to validate);
``Trainer.run_phase`` runs it from step 0 or from a checkpoint, writing ``<out>/checkpoints/last.pt`` atomically
every ``train.checkpoint_every`` steps and at the phase end.

DDP: every rank takes the same path in a step, so the set of parameters that receive gradients is identical on
all ranks; ``find_unused_parameters=True`` lets DDP skip the others, and it leaves their ``.grad`` as None (tested),
so AdamW neither moves nor decays them. The objective runs every path of a step (sandwich) inside one DDP forward.
"""
from __future__ import annotations

import contextlib
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Callable, Sequence

import torch
from timm.utils import ModelEmaV3
from torch import nn
from torch.nn.parallel import DistributedDataParallel
from tqdm import tqdm

from supernet.arch import Arch
from supernet.checkpoint import FORMAT_VERSION, atomic_save, rng_state, set_rng_state
from supernet.config import Config, PhaseConfig
from supernet.training.batches import BatchStream, StreamState
from supernet.training.distributed import DistEnv, all_finite, barrier, gather_objects, mean_across
from supernet.training.logs import RunLogger
from supernet.training.schedule import build_optimizer, build_scheduler


class TrainingDiverged(RuntimeError):
    """The loss or gradient norm became NaN/inf; the last good checkpoint is kept untouched."""


@dataclass
class Phase:
    name: str
    pc: PhaseConfig
    objective: nn.Module  # forward(inp, target, archs) -> (loss, logs, output)
    params: list[nn.Parameter]
    archs_for_step: Callable[[int], Sequence[Arch | None]]
    val_archs: list[tuple[str, Arch | None]]  # (label, path) pairs validated during and after the phase
    extra_state: dict = field(default_factory=dict)  # saved into checkpoints of this phase (e.g. a teacher)


@dataclass
class RunState:
    """What a checkpoint records besides tensors: progress through the phases and the metrics so far."""

    kind: str = "supernet"  # supernet | subnet
    arch: str | None = None
    phases_done: list[str] = field(default_factory=list)
    metrics: dict = field(default_factory=dict)


class Trainer:
    def __init__(self, cfg: Config, net: nn.Module, env: DistEnv, out_dir: str | Path, logger: RunLogger,
                 train_ds, val_ds, state: RunState, on_metrics: Callable[[dict], None] | None = None) -> None:
        self.cfg, self.net, self.env, self.out_dir = cfg, net, env, Path(out_dir)
        self.logger, self.train_ds, self.val_ds, self.state = logger, train_ds, val_ds, state
        self.on_metrics = on_metrics
        self.ckpt_path = self.out_dir / "checkpoints" / "last.pt"
        self.last_good: tuple[str, int] | None = None  # (phase, step) of the last checkpoint written

    # ---- checkpoints -------------------------------------------------------------------------------------
    def checkpoint(self, phase: Phase, step: int, optimizer, scheduler, ema, stream: BatchStream,
                   complete: bool, path: Path | None = None) -> None:
        rngs = gather_objects(rng_state(), self.env)  # collective: every rank calls it
        if self.env.is_main:
            ckpt = {
                "version": FORMAT_VERSION, "kind": self.state.kind, "arch": self.state.arch,
                "model": self.net.state_dict(), "ema": ema.module.state_dict() if ema is not None else None,
                "optimizer": optimizer.state_dict(), "scheduler": scheduler.state_dict(),
                "config": self.cfg.to_dict(), "phase": phase.name, "step": step, "phase_complete": complete,
                "phases_done": list(self.state.phases_done), "data": asdict(stream.state), "rng": rngs,
                "world_size": self.env.world_size, "metrics": self.state.metrics,
                "extra": {k: v.state_dict() if hasattr(v, "state_dict") else v for k, v in phase.extra_state.items()},
            }
            atomic_save(ckpt, path or self.ckpt_path)
        barrier(self.env)
        self.last_good = (phase.name, step)

    # ---- validation --------------------------------------------------------------------------------------
    @torch.no_grad()
    def validate(self, phase: Phase, model: nn.Module, step: int) -> dict:
        """PSNR/SSIM of each of the phase's validation paths on rank 0 (others wait)."""
        from supernet.evaluation import evaluate

        results = {}
        if self.env.is_main and phase.val_archs:
            limit = self.cfg.train.val_images or None
            previous = getattr(model, "arch", None)
            for label, arch in phase.val_archs:
                r = evaluate(model, self.val_ds, self.cfg.task, arch=arch, tile=self.cfg.eval.tile or None,
                             overlap=self.cfg.eval.overlap, max_images=limit, device=self.env.device,
                             return_first=True)
                results[label] = {"psnr": r["psnr"], "ssim": r["ssim"]}
                self.logger.scalars(f"{phase.name}/val_{label}", results[label], step)
                first = r.get("first")
                if first is not None:
                    self.logger.images(f"{phase.name}/images_{label}", *first, step)
            if previous is not None and hasattr(model, "set_arch"):
                model.set_arch(previous)
            table = "  ".join(f"{k}: {v['psnr']:.2f} dB / {v['ssim']:.4f}" for k, v in results.items())
            self.logger.info(f"[{phase.name}] step {step} val {table}")
        barrier(self.env)
        return results

    # ---- the loop ----------------------------------------------------------------------------------------
    def _wrap(self, objective: nn.Module) -> nn.Module:
        if not self.env.distributed:
            return objective
        ids = [self.env.device.index] if self.env.device.type == "cuda" else None
        return DistributedDataParallel(objective, device_ids=ids, find_unused_parameters=True)

    def _autocast(self):
        tc = self.cfg.train
        if self.env.device.type == "cuda" and tc.amp:
            dtype = {"bfloat16": torch.bfloat16, "float16": torch.float16}.get(tc.amp_dtype)
            if dtype is None:
                raise ValueError(f"train.amp_dtype must be bfloat16 or float16, got {tc.amp_dtype!r}")
            return torch.autocast("cuda", dtype=dtype)
        return contextlib.nullcontext()

    def run_phase(self, phase: Phase, resume: dict | None = None) -> dict:
        """Train one phase to its last step; returns the final validation results of its paths."""
        cfg, env, net, pc = self.cfg, self.env, self.net, phase.pc
        trainable = {id(p) for p in phase.params}
        for p in net.parameters():
            p.requires_grad_(id(p) in trainable)
        optimizer = build_optimizer(phase.params, pc)
        scheduler = build_scheduler(optimizer, pc)
        ema = ModelEmaV3(net, decay=cfg.train.ema_decay, use_warmup=True) if cfg.train.ema_decay > 0 else None
        fp16 = env.device.type == "cuda" and cfg.train.amp and cfg.train.amp_dtype == "float16"
        scaler = torch.amp.GradScaler("cuda", enabled=fp16)
        stream_state, start = StreamState(), 0
        if resume is not None:
            optimizer.load_state_dict(resume["optimizer"])
            scheduler.load_state_dict(resume["scheduler"])
            if ema is not None and resume.get("ema") is not None:
                ema.module.load_state_dict(resume["ema"])
            stream_state, start = StreamState(**resume["data"]), int(resume["step"])
            rngs = resume.get("rng") or []
            if len(rngs) == env.world_size:
                set_rng_state(rngs[env.rank])
            self.logger.info(f"[{phase.name}] resuming at step {start}/{pc.steps}")
        # Each phase walks the data in its own order (seed offset by the phase's position in the run).
        phase_seed = cfg.seed + 7919 * (1 + len(self.state.phases_done))
        stream = BatchStream(self.train_ds, cfg.data, phase_seed, env, stream_state)
        model = self._wrap(phase.objective)
        phase.objective.train()
        tc = cfg.train
        bar = tqdm(total=pc.steps, initial=start, desc=phase.name, disable=not env.is_main, dynamic_ncols=True)
        t_last, imgs = time.perf_counter(), 0
        for step in range(start, pc.steps):
            batch = stream.next(step)
            inp = batch["input"].to(env.device, non_blocking=True)
            target = batch["target"].to(env.device, non_blocking=True)
            scheduler.step_update(step)
            archs = phase.archs_for_step(step)
            with self._autocast():
                loss, logs, out = model(inp, target, archs)
            if not all_finite(loss, env):
                raise self._diverged(phase, step, f"loss {float(loss.detach()):.4g}")
            scaler.scale(loss).backward()
            if tc.grad_clip > 0:
                scaler.unscale_(optimizer)
                norm = torch.nn.utils.clip_grad_norm_([p for p in phase.params if p.grad is not None], tc.grad_clip)
                if not fp16 and not all_finite(norm, env):
                    raise self._diverged(phase, step, f"gradient norm {float(norm):.4g}")
            scaler.step(optimizer)
            scaler.update()
            optimizer.zero_grad(set_to_none=True)  # unused candidates keep grad None: no AdamW/decay update
            if ema is not None:
                ema.update(net, step=step + 1)
            done = step + 1
            imgs += inp.shape[0] * env.world_size
            if env.is_main:
                bar.update(1)
            if done % tc.log_every == 0 or done == pc.steps:
                now = time.perf_counter()
                rate = imgs / max(now - t_last, 1e-9)
                t_last, imgs = now, 0
                values = {k: mean_across(float(v), env) for k, v in logs.items()}
                values["loss"] = mean_across(float(loss.detach()), env)
                if env.is_main:
                    bar.set_postfix(loss=f"{values['loss']:.4f}", img_s=f"{rate:.1f}")
                    self.logger.scalars(phase.name, {**values, "lr": optimizer.param_groups[0]["lr"],
                                                     "img_per_s": rate}, done)
                    arch_tag = " ".join(str(a) for a in archs if a is not None)
                    terms = [f"{k} {v:.5f}" for k, v in values.items() if k != "loss"]
                    terms_tag = f" ({', '.join(terms)})" if len(terms) > 1 else ""  # e.g. ground truth + distillation
                    self.logger.info(f"[{phase.name}] step {done}/{pc.steps} loss {values['loss']:.5f}{terms_tag} "
                                     f"lr {optimizer.param_groups[0]['lr']:.3g} {rate:.1f} img/s {arch_tag}")
            if tc.image_every and done % tc.image_every == 0:
                self.logger.images(f"{phase.name}/train", inp, out.detach(), target, done)
            if done < pc.steps and done % tc.checkpoint_every == 0:
                self.checkpoint(phase, done, optimizer, scheduler, ema, stream, complete=False)
            if tc.val_every and done < pc.steps and done % tc.val_every == 0:
                self.validate(phase, ema.module if ema is not None else net, done)
                phase.objective.train()
        bar.close()
        if ema is not None:  # the phase's result is its EMA
            net.load_state_dict(ema.module.state_dict())
        results = self.validate(phase, net, pc.steps)
        self.state.metrics.setdefault(phase.name, {}).update(results)
        self.state.phases_done.append(phase.name)
        if self.on_metrics is not None:
            self.on_metrics(self.state.metrics)
        self.checkpoint(phase, pc.steps, optimizer, scheduler, ema, stream, complete=True)
        self.logger.flush()
        return results

    def _diverged(self, phase: Phase, step: int, what: str) -> TrainingDiverged:
        if self.last_good is not None:
            keep = (f"the last good checkpoint {self.ckpt_path} (phase {self.last_good[0]}, step {self.last_good[1]}) "
                    "is kept unchanged")
        else:
            keep = "no checkpoint was written yet"
        msg = (f"[{phase.name}] {what} is not finite at step {step + 1}: training stopped; {keep}. "
               f"Lower the phase's lr or train.grad_clip, then --resume.")
        self.logger.info(msg)
        return TrainingDiverged(msg)
