"""The runs users start: ``train_supernet`` (teacher -> distill -> supernet) and ``train_subnet`` (fine-tune).

Each phase is resumable (``resume=True`` continues from ``<out>/checkpoints/last.pt``) and skippable
(``<phase>.enabled: false``). The all-S path is validated right before distillation, so the gain of block-wise
distillation is recorded in ``metrics.json`` and the checkpoint.
"""
from __future__ import annotations

import copy
import json
from pathlib import Path

import torch
from torch import nn

from supernet.arch import Arch
from supernet.checkpoint import atomic_save, atomic_write_text, build_model, check_config, load_checkpoint, load_model
from supernet.config import Config
from supernet.training.distributed import DistEnv, barrier, cleanup, init_distributed
from supernet.training.logs import RunLogger
from supernet.training.loop import Phase, RunState, Trainer
from supernet.training.phases import (
    BlockDistillObjective,
    PathObjective,
    get_loss,
    ssm_parameters,
    step_arch,
    teacher_parameters,
    trainable_parameters,
)

PHASES: tuple[str, ...] = ("teacher", "distill", "supernet")


def _datasets(cfg: Config):
    from supernet.data import build_datasets

    return build_datasets(cfg.data, cfg.task, cfg.seed)


def _val_archs(cfg: Config, net: nn.Module) -> dict[str, Arch]:
    archs = {"all_T": Arch.uniform(net, "T"), "all_S": Arch.uniform(net, "S")}
    for text in cfg.train.val_archs:
        arch = Arch.parse(text, net)
        archs.setdefault(str(arch), arch)
    return archs


def _write_metrics(out_dir: Path, env: DistEnv, metrics: dict) -> None:
    if env.is_main:
        atomic_write_text(json.dumps(metrics, indent=2) + "\n", out_dir / "metrics.json")


def _restore(cfg: Config, out_dir: Path, resume: bool) -> dict | None:
    path = out_dir / "checkpoints" / "last.pt"
    if not resume:
        if path.exists():
            raise FileExistsError(f"{path} exists: pass --resume to continue that run, or choose another --out "
                                  "(nothing was overwritten)")
        return None
    if not path.exists():
        return None
    ckpt = load_checkpoint(path)
    check_config(ckpt, cfg, path)
    return ckpt


def build_phase(name: str, cfg: Config, net: nn.Module, ckpt: dict | None) -> Phase:
    """The objective, parameters, per-step paths and validation paths of one phase of ``train_supernet``."""
    archs = _val_archs(cfg, net)
    all_t, all_s = archs["all_T"], archs["all_S"]
    if name == "teacher":
        pc = cfg.teacher
        obj = PathObjective(net, get_loss(pc.loss, "teacher.loss"))
        return Phase(name, pc, obj, teacher_parameters(net), lambda step: [all_t], [("all_T", all_t)])
    if name == "distill":
        pc = cfg.distill
        obj = BlockDistillObjective(net, get_loss(pc.loss, "distill.loss"), pc.inputs, pc.normalize,
                                    pc.task_weight, get_loss(pc.task_loss, "distill.task_loss"))
        vals = [(k, a) for k, a in archs.items() if k != "all_T"]
        return Phase(name, pc, obj, ssm_parameters(net), lambda step: [], vals)
    if name == "supernet":
        pc = cfg.supernet
        teacher, extra = None, {}
        if pc.distill_weight > 0:  # frozen all-T snapshot of the network as distillation left it
            teacher = copy.deepcopy(net)
            if ckpt is not None and ckpt.get("phase") == "supernet" and "teacher" in ckpt.get("extra", {}):
                teacher.load_state_dict(ckpt["extra"]["teacher"])
            teacher.set_arch(all_t)
            extra["teacher"] = teacher
        obj = PathObjective(net, get_loss(pc.loss, "supernet.loss"), teacher, pc.distill_weight)
        if pc.fixed_arch:
            fixed = Arch.parse(pc.fixed_arch, net)
            paths = lambda step: [fixed]  # noqa: E731
        else:
            def paths(step: int) -> list[Arch]:
                sampled = [step_arch(net, cfg.seed, step, pc.granularity, pc.p_transformer)]
                return sampled + [all_t, all_s] if pc.sandwich else sampled
        params = trainable_parameters(net, pc.trainable, "supernet.trainable")
        return Phase(name, pc, obj, params, paths, list(archs.items()), extra)
    raise ValueError(f"unknown phase {name!r}; phases are {PHASES}")


def run_phases(net: nn.Module, phases: list[tuple[str, Config, list[tuple[str, Arch]]]], out_dir: str | Path,
               datasets) -> list[dict]:
    """Benchmarks' short, not resumable runs: ``phases`` [(phase name, its config, [(label, arch) to validate])] on
    ``net`` in order, through one :class:`Trainer` logging to ``out_dir``; returns each phase's validation results
    ``{label: {"psnr", "ssim"}}``. The run counts as after the teacher phase, so every such run's first phase walks
    the data in the same order, whatever the network."""
    cfg = phases[0][1]
    env = init_distributed("cpu" if cfg.train.device == "cpu" else "auto")
    net.to(env.device)
    out_dir = Path(out_dir)
    logger = RunLogger(out_dir, tensorboard=False)
    results = []
    try:
        trainer = Trainer(cfg, net, env, out_dir, logger, *datasets, RunState(phases_done=["teacher"]))
        for name, phase_cfg, val_archs in phases:
            trainer.cfg = phase_cfg
            phase = build_phase(name, phase_cfg, net, None)
            phase.val_archs = list(val_archs)
            results.append(trainer.run_phase(phase))
    finally:
        logger.close()
    return results


def train_supernet(cfg: Config, out_dir: str | Path | None = None, resume: bool = False,
                   phases: tuple[str, ...] = PHASES) -> dict:
    """Run the enabled phases in order and write ``<out>/supernet.pt``; returns the metrics dict."""
    env = init_distributed(cfg.train.device)
    out = Path(out_dir) if out_dir else cfg.out_dir
    logger = RunLogger(out, enabled=env.is_main)
    try:
        torch.manual_seed(cfg.seed)
        net = build_model(cfg).to(env.device)
        ckpt = _restore(cfg, out, resume)
        state = RunState(kind="supernet")
        if ckpt is not None:
            net.load_state_dict(ckpt["model"])
            state.phases_done, state.metrics = list(ckpt["phases_done"]), dict(ckpt["metrics"])
        elif env.is_main:
            atomic_write_text(json.dumps(cfg.to_dict(), indent=2) + "\n", out / "config.json")
        train_ds, val_ds = _datasets(cfg)
        trainer = Trainer(cfg, net, env, out, logger, train_ds, val_ds, state,
                          on_metrics=lambda m: _write_metrics(out, env, m))
        if ckpt is not None:
            trainer.last_good = (ckpt["phase"], ckpt["step"])
        logger.info(f"run {cfg.name}: task {cfg.task}, {sum(p.numel() for p in net.parameters()) / 1e6:.2f} M "
                    f"params, device {env.device}, world {env.world_size}, out {out}")
        if env.is_main and "degraded_input" not in state.metrics and len(val_ds):
            from supernet.evaluation import input_quality

            q = input_quality(val_ds, cfg.task)  # the yardstick: a task not learnt barely moves off it
            state.metrics["degraded_input"] = {"psnr": q["psnr"], "ssim": q["ssim"]}
            logger.info(f"validation set: {q['n']} items; the degraded inputs score {q['psnr']:.2f} dB / "
                        f"{q['ssim']:.4f}")
        for name in phases:
            if name in state.phases_done:
                continue
            pc = getattr(cfg, name)
            resume_from = ckpt if ckpt is not None and ckpt["phase"] == name and not ckpt["phase_complete"] else None
            if name == "teacher" and cfg.teacher.init and resume_from is None:
                from supernet import load_restormer

                load_restormer(net, cfg.teacher.init)
                logger.info(f"[teacher] loaded Restormer weights from {cfg.teacher.init}")
                if not cfg.teacher.finetune:
                    pc = copy.copy(pc)
                    pc.steps = 0
            if not pc.enabled:
                logger.info(f"[{name}] skipped ({name}.enabled: false)")
                state.phases_done.append(name)
                continue
            phase = build_phase(name, cfg, net, resume_from)
            if name == "distill" and resume_from is None:  # the baseline distillation must beat
                before = trainer.validate(phase, net, 0).get("all_S")
                if before is not None:
                    state.metrics["all_S_before_distill"] = before
                    _write_metrics(out, env, state.metrics)
            phase.pc = pc  # a copy with steps=0 when Restormer weights are loaded without fine-tuning
            trainer.run_phase(phase, resume_from)
        if env.is_main:
            final = load_checkpoint(out / "checkpoints" / "last.pt") if (out / "checkpoints/last.pt").exists() else {
                "model": net.state_dict(), "ema": None, "config": cfg.to_dict(), "kind": "supernet", "arch": None,
                "metrics": state.metrics, "phases_done": state.phases_done}
            for key in ("optimizer", "scheduler", "rng", "data", "extra"):
                final.pop(key, None)
            atomic_save(final, out / "supernet.pt")
            logger.info(summary(state.metrics))
        barrier(env)
        return state.metrics
    finally:
        logger.close()
        cleanup()


def summary(metrics: dict) -> str:
    """The numbers the run is judged by (validation PSNR / SSIM): all-T, all-S, all-S before and after
    distillation, and the degraded inputs themselves, which restoration has to beat."""
    def last(label: str) -> dict | None:
        for phase in reversed(PHASES):
            if label in metrics.get(phase, {}):
                return metrics[phase][label]
        return None

    rows = [("all-T", last("all_T")), ("all-S", last("all_S")),
            ("all-S before distillation", metrics.get("all_S_before_distill")),
            ("all-S after distillation", metrics.get("distill", {}).get("all_S")),
            ("degraded input", metrics.get("degraded_input"))]
    lines = ["validation PSNR / SSIM:"]
    for label, r in rows:
        lines.append(f"  {label:<28} " + (f"{r['psnr']:.2f} dB / {r['ssim']:.4f}" if r else "n/a"))
    return "\n".join(lines)


def _subnet_teacher(cfg: Config, arch: Arch, from_ckpt: str | Path, logger: RunLogger) -> nn.Module | None:
    """The frozen network whose output a subnet's fine-tuning distils (``subnet.distill_weight`` > 0), or None.

    ``subnet.teacher`` names a checkpoint (a subnet, or a supernet whose all-T path is used); empty means the all-T
    path of ``from_ckpt``, which all-T itself does not distil (it would copy its own starting point)."""
    sc = cfg.subnet
    for key in ("distill_weight", "feature_distill_weight"):
        if getattr(sc, key) < 0:
            raise ValueError(f"subnet.{key} must be >= 0, got {getattr(sc, key)}")
    if sc.distill_weight == 0 and sc.feature_distill_weight == 0:
        return None
    path = Path(sc.teacher) if sc.teacher else Path(from_ckpt)
    if not sc.teacher and arch.count("S") == 0:
        logger.info(f"subnet {arch}: no distillation (subnet.teacher is empty, and the teacher would be this "
                    "arch's own starting point)")
        return None
    if not path.is_file():
        raise FileNotFoundError(f"subnet.teacher: {path} is not a file (expected a subnet.pt or supernet.pt)")
    teacher, tcfg = load_model(path, map_location="cpu")
    if tcfg.task != cfg.task or (tcfg.model.inp_channels, tcfg.model.out_channels) != (
            cfg.model.inp_channels, cfg.model.out_channels):
        raise ValueError(f"subnet.teacher: {path} restores {tcfg.task} with {tcfg.model.inp_channels} -> "
                         f"{tcfg.model.out_channels} channels; this run is {cfg.task} with {cfg.model.inp_channels} -> "
                         f"{cfg.model.out_channels}")
    if hasattr(teacher, "set_arch"):  # a supernet: its all-T path
        teacher = teacher.extract(Arch.uniform(teacher, "T"))
    what = [f"output distillation, {sc.distill_weight:g} x L1"] if sc.distill_weight > 0 else []
    if sc.feature_distill_weight > 0:
        what.append(f"stage-feature distillation, {sc.feature_distill_weight:g} x distance")
    logger.info(f"subnet {arch}: {' and '.join(what)} to the frozen teacher {path}"
                f"{'' if sc.teacher else ' (all-T path)'}")
    return teacher


def train_subnet(cfg: Config, arch: Arch, from_ckpt: str | Path, out_dir: str | Path | None = None,
                 steps: int | None = None, resume: bool = False) -> dict:
    """Extract ``arch`` from a supernet checkpoint with its inherited weights and fine-tune it stand-alone
    (the ``supernet`` phase's optimiser settings, L1 to the ground truth). Writes ``<out>/subnet.pt``."""
    env = init_distributed(cfg.train.device)
    out = Path(out_dir) if out_dir else cfg.out_dir / f"subnet-{arch}"
    logger = RunLogger(out, enabled=env.is_main)
    try:
        torch.manual_seed(cfg.seed)
        supernet, _ = load_model(from_ckpt, map_location="cpu")
        arch.check(supernet)
        net = supernet.extract(arch).to(env.device)
        del supernet
        pc = copy.copy(cfg.supernet)
        pc.enabled = True
        if steps is not None:
            pc.steps = steps
        ckpt = _restore(cfg, out, resume)
        state = RunState(kind="subnet", arch=str(arch))
        if ckpt is not None:
            if ckpt.get("arch") != str(arch):
                raise ValueError(f"{out}: the checkpoint holds arch {ckpt.get('arch')}, not {arch}")
            net.load_state_dict(ckpt["model"])
            state.phases_done, state.metrics = list(ckpt["phases_done"]), dict(ckpt["metrics"])
        train_ds, val_ds = _datasets(cfg)
        trainer = Trainer(cfg, net, env, out, logger, train_ds, val_ds, state,
                          on_metrics=lambda m: _write_metrics(out, env, m))
        if ckpt is not None:  # a divergence after --resume names the checkpoint it resumed from as the good one
            trainer.last_good = (ckpt["phase"], ckpt["step"])
        teacher = _subnet_teacher(cfg, arch, from_ckpt, logger)
        if teacher is not None:
            teacher = teacher.to(env.device)
        objective = PathObjective(net, get_loss(pc.loss, "supernet.loss"), teacher, cfg.subnet.distill_weight,
                                  cfg.subnet.feature_distill_weight)
        phase = Phase("subnet", pc, objective, list(net.parameters()), lambda step: [None], [(str(arch), None)])
        if "subnet" not in state.phases_done:
            if ckpt is None:
                state.metrics["inherited"] = trainer.validate(phase, net, 0).get(str(arch))
            trainer.run_phase(phase, ckpt if ckpt is not None and not ckpt["phase_complete"] else None)
        if env.is_main:
            final = load_checkpoint(out / "checkpoints" / "last.pt")
            for key in ("optimizer", "scheduler", "rng", "data", "extra"):
                final.pop(key, None)
            atomic_save(final, out / "subnet.pt")
            arch.save(out / "arch.json", **{k: v for k, v in (state.metrics.get("subnet", {}).get(str(arch)) or {}
                                                             ).items()})
            r, r0 = state.metrics.get("subnet", {}).get(str(arch)), state.metrics.get("inherited")
            logger.info(f"subnet {arch}: inherited {r0['psnr']:.2f} dB -> fine-tuned {r['psnr']:.2f} dB"
                        if r and r0 else f"subnet {arch}: {r}")
        barrier(env)
        return state.metrics
    finally:
        logger.close()
        cleanup()
