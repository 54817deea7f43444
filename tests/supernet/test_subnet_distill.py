"""Output and stage-feature distillation while fine-tuning an extracted subnet (``subnet.distill_weight``,
``subnet.feature_distill_weight``, ``subnet.teacher``) and the pipeline's ``finetune_distill`` /
``finetune_feature_distill``: which teacher, which archs, and the errors that name the key."""

from pathlib import Path

import pytest
import torch

from supernet.arch import Arch
from supernet.checkpoint import load_checkpoint
from supernet.config import load_config
from supernet.pipeline import PipelineSpec, _finetune_sets
from supernet.training import train_subnet, train_supernet
from supernet.training.logs import RunLogger
from supernet.training.run import _subnet_teacher
from test_train_phases import TINY

# the training tests' tiny network and data, with fewer steps and no intermediate checkpoints
FEWER_STEPS = ["train.checkpoint_every=50", "teacher.steps=2", "distill.steps=2", "supernet.steps=2"]


def tiny(*extra: str):
    return load_config(None, TINY + FEWER_STEPS + list(extra))


@pytest.fixture(scope="module")
def supernet_ckpt(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("kd") / "supernet"
    train_supernet(tiny(), out)
    return out / "supernet.pt"


def finetuned(ckpt: Path, out: Path, arch: str, *extra: str) -> dict[str, torch.Tensor]:
    train_subnet(tiny(*extra), Arch.parse(arch), ckpt, out, steps=2)
    return load_checkpoint(out / "subnet.pt")["model"]


def test_distillation_changes_the_update_and_is_logged(supernet_ckpt, tmp_path):
    plain = finetuned(supernet_ckpt, tmp_path / "plain", "SSSSSSSS")
    kd = finetuned(supernet_ckpt, tmp_path / "kd", "SSSSSSSS", "subnet.distill_weight=1")
    assert any(not torch.equal(plain[k], kd[k]) for k in plain)
    log = (tmp_path / "kd" / "train.log").read_text()
    assert "output distillation, 1 x L1 to the frozen teacher" in log and "(all-T path)" in log
    assert "loss_gt" in log and "loss_kd" in log  # both terms on the step lines
    assert "loss_kd" not in (tmp_path / "plain" / "train.log").read_text()


def test_stage_feature_distillation_changes_the_update_and_is_logged(supernet_ckpt, tmp_path):
    kd = finetuned(supernet_ckpt, tmp_path / "kd", "SSTSSTSS", "subnet.distill_weight=1")
    both = finetuned(supernet_ckpt, tmp_path / "both", "SSTSSTSS", "subnet.distill_weight=1",
                     "subnet.feature_distill_weight=0.5")
    assert any(not torch.equal(kd[k], both[k]) for k in kd)
    log = (tmp_path / "both" / "train.log").read_text()
    assert "output distillation, 1 x L1 and stage-feature distillation, 0.5 x distance to the frozen teacher" in log
    assert "loss_kd" in log and "loss_feat" in log
    finetuned(supernet_ckpt, tmp_path / "feat", "SSTSSTSS", "subnet.feature_distill_weight=0.5")
    log = (tmp_path / "feat" / "train.log").read_text()
    assert ": stage-feature distillation, 0.5 x distance to" in log and "loss_feat" in log and "loss_kd" not in log
    assert "loss_feat" not in (tmp_path / "kd" / "train.log").read_text()


def test_stage_feature_distance_is_scale_free_and_reaches_the_student():
    from supernet.training.phases import stage_feature_distance

    g = torch.Generator().manual_seed(0)
    teacher = {str(i): (None, torch.randn(2, 4, 8, 8, generator=g) * 10 ** i) for i in range(3)}
    assert stage_feature_distance(teacher, teacher).item() == 0
    student = {k: (None, (t * 1.1).requires_grad_()) for k, (_, t) in teacher.items()}
    d = stage_feature_distance(student, teacher)
    assert d.item() == pytest.approx(0.1, rel=1e-5)  # 10% off on every stage, whatever each stage's scale
    d.backward()
    assert all(s[1].grad is not None and s[1].grad.abs().sum() > 0 for s in student.values())
    with pytest.raises(ValueError, match="stage features: the student's stages"):
        stage_feature_distance({"0": student["0"]}, teacher)


def test_the_teacher_stays_in_eval_mode_while_the_net_trains(supernet_ckpt, tmp_path):
    from supernet.training import PathObjective

    logger = RunLogger(tmp_path / "log")
    try:
        teacher = _subnet_teacher(tiny("subnet.distill_weight=1"), Arch.parse("SSSSSSSS"), supernet_ckpt, logger)
    finally:
        logger.close()
    obj = PathObjective(torch.nn.Linear(2, 2), torch.nn.functional.l1_loss, teacher, 1.0).train()
    assert obj.net.training and not teacher.training


def test_all_t_does_not_distil_its_own_starting_point(supernet_ckpt, tmp_path):
    finetuned(supernet_ckpt, tmp_path / "t", "TTTTTTTT", "subnet.distill_weight=1")
    log = (tmp_path / "t" / "train.log").read_text()
    assert "no distillation" in log and "loss_kd" not in log


def test_a_finetuned_subnet_as_the_teacher(supernet_ckpt, tmp_path):
    finetuned(supernet_ckpt, tmp_path / "t", "TTTTTTTT")
    teacher = tmp_path / "t" / "subnet.pt"
    finetuned(supernet_ckpt, tmp_path / "s", "SSSSSSSS", "subnet.distill_weight=0.5", f"subnet.teacher={teacher}")
    assert f"0.5 x L1 to the frozen teacher {teacher}\n" in (tmp_path / "s" / "train.log").read_text()


def test_bad_teacher_settings_name_the_key(supernet_ckpt, tmp_path):
    logger = RunLogger(tmp_path / "log")
    arch = Arch.parse("SSSSSSSS")
    try:
        with pytest.raises(FileNotFoundError, match="subnet.teacher: .*nope.pt is not a file"):
            _subnet_teacher(tiny("subnet.distill_weight=1", f"subnet.teacher={tmp_path / 'nope.pt'}"), arch,
                            supernet_ckpt, logger)
        with pytest.raises(ValueError, match="subnet.distill_weight must be >= 0"):
            _subnet_teacher(tiny("subnet.distill_weight=-1"), arch, supernet_ckpt, logger)
        with pytest.raises(ValueError, match="subnet.feature_distill_weight must be >= 0"):
            _subnet_teacher(tiny("subnet.feature_distill_weight=-1"), arch, supernet_ckpt, logger)
        with pytest.raises(ValueError, match="subnet.teacher: .* restores denoise .* this run is derain"):
            _subnet_teacher(tiny("task=derain", "subnet.distill_weight=1"), arch, supernet_ckpt, logger)
        assert _subnet_teacher(tiny(), arch, supernet_ckpt, logger) is None
    finally:
        logger.close()


def test_pipeline_gives_every_arch_but_all_t_the_teacher(tmp_path):
    all_t, all_s = Arch.parse("TTTTTTTT"), Arch.parse("SSSSSSSS")
    assert _finetune_sets(PipelineSpec(), all_s, all_t, tmp_path) == []
    spec = PipelineSpec(finetune_distill=0.5)
    assert _finetune_sets(spec, all_t, all_t, tmp_path) == ["--set", "subnet.distill_weight=0"]
    assert _finetune_sets(spec, all_s, all_t, tmp_path) == [
        "--set", "subnet.distill_weight=0.5", "--set", f"subnet.teacher={tmp_path / 'subnet-TTTTTTTT' / 'subnet.pt'}"]
    supernet_teacher = _finetune_sets(PipelineSpec(finetune_distill=1, finetune_teacher="supernet"), all_s, all_t,
                                      tmp_path)
    assert supernet_teacher[-1] == "subnet.teacher=''"
    assert load_config(None, [supernet_teacher[-1]]).subnet.teacher == ""
    with pytest.raises(ValueError, match="finetune_teacher must be one of all-t, supernet"):
        PipelineSpec(finetune_teacher="best")
    with pytest.raises(ValueError, match="finetune_distill must be >= 0"):
        PipelineSpec(finetune_distill=-1)
    feat = PipelineSpec(finetune_distill=3, finetune_feature_distill=0.02)
    assert _finetune_sets(feat, all_t, all_t, tmp_path) == ["--set", "subnet.distill_weight=0",
                                                            "--set", "subnet.feature_distill_weight=0"]
    assert _finetune_sets(feat, all_s, all_t, tmp_path)[:4] == ["--set", "subnet.distill_weight=3",
                                                                "--set", "subnet.feature_distill_weight=0.02"]
    with pytest.raises(ValueError, match="finetune_feature_distill must be >= 0"):
        PipelineSpec(finetune_feature_distill=-1)


def test_a_divergence_after_resume_names_the_checkpoint_resumed_from(supernet_ckpt, tmp_path, monkeypatch):
    from supernet.training import PathObjective, TrainingDiverged

    original, calls = PathObjective.forward, {"n": 0}

    def poisoned_from(first: int):
        def forward(self, inp, target, archs):
            calls["n"] += 1
            loss, logs, out = original(self, inp, target, archs)
            return (loss * float("nan") if calls["n"] >= first else loss), logs, out
        return forward

    cfg, arch, out = tiny("train.checkpoint_every=2"), Arch.parse("SSTSSSSS"), tmp_path / "sub"
    monkeypatch.setattr(PathObjective, "forward", poisoned_from(3))
    with pytest.raises(TrainingDiverged, match=r"step 3: .*\(phase subnet, step 2\) is kept unchanged"):
        train_subnet(cfg, arch, supernet_ckpt, out, steps=4)
    calls["n"] = 0
    monkeypatch.setattr(PathObjective, "forward", poisoned_from(1))  # still diverges at once after --resume
    with pytest.raises(TrainingDiverged, match=r"step 3: .*\(phase subnet, step 2\) is kept unchanged"):
        train_subnet(cfg, arch, supernet_ckpt, out, steps=4, resume=True)
    assert load_checkpoint(out / "checkpoints" / "last.pt")["step"] == 2
