"""What each phase optimises: the objectives (one DDP forward per step) and which parameters train.

- teacher: the all-transformer path, L1 to the ground truth.
- distill: one frozen teacher forward per batch with forward hooks on every slot's transformer candidate; every
  SSM candidate gets its twin's captured input and learns the twin's output. All slots train in parallel.
  (``distill.inputs: student`` feeds each SSM block the all-S chain's own features instead, so blocks learn to
  correct their predecessors' errors; ``both`` sums the two losses.)
- supernet: one random path per step, ``random.Random(f"{seed}:{step}")`` so every DDP rank samples the same
  path; optional sandwich (all-T and all-S in the same step) and output distillation to a frozen all-T teacher.
- subnet: a fixed extracted network, L1 to the ground truth; optionally L1 to a frozen teacher's output and
  the distance of its 8 stage outputs to the teacher's (``subnet.distill_weight``, ``subnet.feature_distill_weight``).
"""
from __future__ import annotations

import contextlib
import functools
import random
from typing import Callable, Sequence

import torch
import torch.nn.functional as F
from torch import nn

from supernet.arch import Arch


def charbonnier(pred: torch.Tensor, target: torch.Tensor, eps: float = 1e-3) -> torch.Tensor:
    return torch.sqrt((pred - target) ** 2 + eps * eps).mean()


LOSSES: dict[str, Callable[[torch.Tensor, torch.Tensor], torch.Tensor]] = {
    "l1": F.l1_loss, "mse": F.mse_loss, "charbonnier": charbonnier,
}


def get_loss(name: str, key: str) -> Callable[[torch.Tensor, torch.Tensor], torch.Tensor]:
    if name not in LOSSES:
        raise ValueError(f"{key}: unknown loss {name!r}; choose one of {sorted(LOSSES)}")
    return LOSSES[name]


def ssm_parameters(net: nn.Module) -> list[nn.Parameter]:
    return [p for _, _, slot in net.slots() for p in slot.candidates["ssm"].parameters()]


def teacher_parameters(net: nn.Module) -> list[nn.Parameter]:
    """Everything the all-transformer path uses: all parameters but the SSM candidates'."""
    ssm = {id(p) for p in ssm_parameters(net)}
    return [p for p in net.parameters() if id(p) not in ssm]


TRAINABLE: dict[str, Callable[[nn.Module], list[nn.Parameter]]] = {
    "all": lambda net: list(net.parameters()), "ssm": ssm_parameters,
}


def trainable_parameters(net: nn.Module, which: str, key: str) -> list[nn.Parameter]:
    if which not in TRAINABLE:
        raise ValueError(f"{key}: unknown parameter set {which!r}; choose one of {sorted(TRAINABLE)}")
    return TRAINABLE[which](net)


def step_arch(net: nn.Module, seed: int, step: int, granularity: str, p_transformer: float) -> Arch:
    """The random path of a supernet step: a function of (seed, step) only, identical on every rank."""
    return Arch.random(net, random.Random(f"{seed}:{step}"), granularity, p_transformer)


class PathObjective(nn.Module):
    """Sum over ``archs`` of ``loss(net(x) on that path, target)``, plus ``distill_weight`` x L1 between the
    path's output and a frozen teacher's output, plus ``feature_weight`` x the stage-feature distance to the same
    teacher (``stage_feature_distance``: the 8 U-Net stages' outputs). ``archs=[None]`` trains a fixed network
    (no ``set_arch``)."""

    def __init__(self, net: nn.Module, loss: Callable, teacher: nn.Module | None = None,
                 distill_weight: float = 0.0, feature_weight: float = 0.0) -> None:
        super().__init__()
        self.net, self.loss_fn = net, loss
        self.distill_weight, self.feature_weight = distill_weight, feature_weight
        self.teacher = teacher
        if teacher is not None:
            teacher.requires_grad_(False).eval()

    def train(self, mode: bool = True) -> "PathObjective":
        """Train the network; the frozen teacher stays in eval mode (the loop calls ``objective.train()``)."""
        super().train(mode)
        if self.teacher is not None:
            self.teacher.eval()
        return self

    def forward(self, inp: torch.Tensor, target: torch.Tensor, archs: Sequence[Arch | None]
                ) -> tuple[torch.Tensor, dict[str, torch.Tensor], torch.Tensor]:
        total, logs, out = 0.0, {}, inp
        teacher_out, teacher_feats = None, None
        features = self.teacher is not None and self.feature_weight > 0
        if self.teacher is not None and (self.distill_weight > 0 or features):
            with torch.no_grad(), capture(stage_dict(self.teacher) if features else {}, detach=True) as seen:
                teacher_out = self.teacher(inp)
            teacher_feats = dict(seen) if features else None
        for i, arch in enumerate(archs):
            if arch is not None:
                self.net.set_arch(arch)
            with capture(stage_dict(self.net) if features else {}, detach=False) as student_feats:
                out = self.net(inp)
            loss = self.loss_fn(out, target)
            logs[f"loss_path{i}" if len(archs) > 1 else "loss_gt"] = loss.detach()
            if teacher_out is not None and self.distill_weight > 0:
                kd = F.l1_loss(out, teacher_out)
                logs[f"kd_path{i}" if len(archs) > 1 else "loss_kd"] = kd.detach()
                loss = loss + self.distill_weight * kd
            if teacher_feats is not None:
                feat = stage_feature_distance(student_feats, teacher_feats)
                logs[f"feat_path{i}" if len(archs) > 1 else "loss_feat"] = feat.detach()
                loss = loss + self.feature_weight * feat
            total = total + loss
        return total, logs, out


def stage_dict(net: nn.Module) -> dict[str, nn.Module]:
    """The U-Net's 8 stages (encoder 1-3, latent, decoder 3-1, refinement) by position."""
    return {str(i): m for i, m in enumerate(net.stage_modules())}


def stage_feature_distance(student: dict[str, tuple[torch.Tensor, torch.Tensor]],
                           teacher: dict[str, tuple[torch.Tensor, torch.Tensor]]) -> torch.Tensor:
    """Mean over stages of ``L1(student output, teacher output) / mean |teacher output|``: every stage counts
    alike whatever the scale of its features (a stage the teacher leaves at 0 is divided by 1e-8, not 0)."""
    if set(student) != set(teacher) or not teacher:
        raise ValueError(f"stage features: the student's stages {sorted(student)} differ from the teacher's "
                         f"{sorted(teacher)}")
    terms = [F.l1_loss(student[k][1], teacher[k][1]) / teacher[k][1].abs().mean().clamp_min(1e-8) for k in teacher]
    return torch.stack(terms).mean()


@contextlib.contextmanager
def capture(modules: dict[str, nn.Module], detach: bool):
    """Record ``{key: (input, output)}`` of every module's forward while the context is open."""
    seen: dict[str, tuple[torch.Tensor, torch.Tensor]] = {}
    handles = []
    for key, module in modules.items():
        def hook(mod, args, output, key=key):
            seen[key] = (args[0].detach(), output.detach() if detach else output)
        handles.append(module.register_forward_hook(hook))
    try:
        yield seen
    finally:
        for h in handles:
            h.remove()


def _local_outputs(objective: "BlockDistillObjective", teacher: dict, chain: Callable[[], tuple]) -> dict:
    """Each SSM block applied to its twin's captured input (blocks independent, errors do not compound)."""
    return {key: objective.ssm[key](x_in) for key, (x_in, _) in teacher.items()}


def _chained_outputs(objective: "BlockDistillObjective", teacher: dict, chain: Callable[[], tuple]) -> dict:
    """The all-S path run end to end: each SSM block sees its SSM predecessors' output, so it learns to
    correct what they get wrong (gradients flow through the chain; non-SSM parts stay frozen)."""
    return chain()[0]


# Where each SSM block's input comes from during distillation (``distill.inputs``).
DISTILL_INPUTS: dict[str, tuple[Callable, ...]] = {
    "teacher": (_local_outputs,), "student": (_chained_outputs,), "both": (_local_outputs, _chained_outputs),
}


class BlockDistillObjective(nn.Module):
    """Block-wise feature distillation from one frozen teacher pass: every SSM block learns its transformer
    twin's output. ``inputs="teacher"``: from the twin's own input (the slots are independent and train in
    parallel); ``"student"``: inside the all-S chain; ``"both"``: the sum of the two. ``normalize``: divide each
    block's loss by the same loss of the identity (twin's output vs its input), so deep blocks whose residual is
    small weigh as much as shallow ones and every block is scored against doing nothing.

    ``task_weight`` > 0 adds ``task_weight x task_loss(all-S output, target)``: the block targets then act as
    hints inside an end-to-end objective (FitNets-style) rather than as the only signal. The all-S chain is run
    at most once per step, lazily, and shared by ``inputs="student"`` and the task term."""

    def __init__(self, net: nn.Module, loss: Callable, inputs: str = "teacher", normalize: bool = False,
                 task_weight: float = 0.0, task_loss: Callable | None = None) -> None:
        super().__init__()
        if inputs not in DISTILL_INPUTS:
            raise ValueError(f"distill.inputs: unknown {inputs!r}; choose one of {sorted(DISTILL_INPUTS)}")
        if task_weight < 0:
            raise ValueError(f"distill.task_weight must be >= 0, got {task_weight}")
        self.net, self.loss_fn, self.sources, self.normalize = net, loss, DISTILL_INPUTS[inputs], normalize
        self.task_weight, self.task_loss = task_weight, task_loss or F.l1_loss
        self.all_t, self.all_s = Arch.uniform(net, "T"), Arch.uniform(net, "S")
        slots = net.slots()
        self.twins = {f"{s}.{i}": slot.candidates["transformer"] for s, i, slot in slots}
        self.ssm = {f"{s}.{i}": slot.candidates["ssm"] for s, i, slot in slots}

    def run_chain(self, inp: torch.Tensor) -> tuple[dict, torch.Tensor]:
        """(SSM block outputs, network output) of the all-S path on ``inp``."""
        self.net.set_arch(self.all_s)
        with capture(self.ssm, detach=False) as student:
            out = self.net(inp)
        return {key: o for key, (_, o) in student.items()}, out

    def forward(self, inp: torch.Tensor, target: torch.Tensor, archs: Sequence[Arch | None] = ()
                ) -> tuple[torch.Tensor, dict[str, torch.Tensor], torch.Tensor]:
        self.net.set_arch(self.all_t)
        with torch.no_grad(), capture(self.twins, detach=True) as teacher:
            out = self.net(inp)
        chain = functools.cache(lambda: self.run_chain(inp))  # the all-S pass, run only if a term needs it
        total, per_stage = 0.0, {}
        for source in self.sources:
            for key, pred in source(self, teacher, chain).items():
                loss = self.loss_fn(pred, teacher[key][1])
                if self.normalize:
                    loss = loss / self.loss_fn(teacher[key][0], teacher[key][1]).clamp_min(1e-8)
                total = total + loss
                per_stage.setdefault(key.split(".")[0], []).append(loss.detach())
        blocks, task = total, None
        if self.task_weight > 0:
            task = self.task_loss(chain()[1], target)
            total = total + self.task_weight * task
        logs = {f"block_{s}": torch.stack(v).mean() for s, v in per_stage.items()}
        logs["loss_blocks"] = blocks.detach() / sum(len(v) for v in per_stage.values())
        if task is not None:
            logs["loss_task"] = task.detach()
        return total, logs, out
