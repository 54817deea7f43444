"""A few steps of each phase on a tiny config: what trains, what stays untouched, what gets recorded."""

import pytest
import torch

from supernet.arch import Arch
from supernet.checkpoint import build_model, load_checkpoint, load_model
from supernet.config import load_config
from supernet.training import PathObjective, step_arch, train_subnet, train_supernet
from supernet.training.phases import BlockDistillObjective, ssm_parameters, teacher_parameters
from supernet.training.schedule import build_optimizer

TINY = ["model.dim=8", "model.num_blocks=[1,1,1,1]", "model.num_refinement_blocks=1", "model.heads=[1,1,1,1]",
        "data.patch_size=16", "data.batch_size=2", "data.val_count=1", "data.val_crop=32", "data.repeat=1",
        "data.embedded_images=[astronaut,coffee,chelsea,rocket]", "train.device=cpu", "train.log_every=1",
        "train.checkpoint_every=2", "train.val_archs=[TTTTSSSS]", "teacher.steps=3", "distill.steps=3",
        "supernet.steps=3", "teacher.warmup=1", "distill.warmup=1", "supernet.warmup=1"]



def tiny(*extra: str):
    return load_config(None, TINY + list(extra))


def snapshot(params):
    return [p.detach().clone() for p in params]


def changed(before, params):
    return [not torch.equal(b, p.detach()) for b, p in zip(before, params)]


def test_step_arch_is_a_function_of_seed_and_step():
    net = build_model(tiny())
    a = [step_arch(net, 0, s, "stage", 0.5) for s in range(20)]
    assert a == [step_arch(net, 0, s, "stage", 0.5) for s in range(20)]
    assert len({str(x) for x in a}) > 5  # it does vary across steps
    assert a != [step_arch(net, 1, s, "stage", 0.5) for s in range(20)]
    assert all(x.granularity == "block" for x in (step_arch(net, 0, s, "block", 0.5) for s in range(3)))


def test_unused_candidates_get_no_gradient_and_no_weight_decay():
    torch.manual_seed(0)
    net = build_model(tiny())
    arch = Arch.parse("TSTSTSTS")
    obj = PathObjective(net, torch.nn.functional.l1_loss)
    cfg = tiny("supernet.weight_decay=0.5", "supernet.lr=0.1")
    opt = build_optimizer(net.parameters(), cfg.supernet)
    ops = arch.block_ops(net)
    unused = [p for (stage, i, slot), op in zip(net.slots(), [o for s in ops for o in s])
              for name, cand in slot.candidates.items() if name != op for p in cand.parameters()]
    used = [p for (stage, i, slot), op in zip(net.slots(), [o for s in ops for o in s])
            for p in slot.candidates[op].parameters()]
    before_unused, before_used = snapshot(unused), snapshot(used)
    x = torch.rand(2, 3, 16, 16)
    for _ in range(2):
        loss, _, _ = obj(x, x, [arch])
        loss.backward()
        assert all(p.grad is None for p in unused)
        opt.step()
        opt.zero_grad(set_to_none=True)
    assert not any(changed(before_unused, unused))  # weight decay 0.5 would have shrunk them
    assert all(changed(before_used, used))


@pytest.mark.parametrize("inputs", ["teacher", "student", "both"])
def test_block_distillation_trains_only_ssm_blocks_towards_their_twins(inputs):
    torch.manual_seed(0)
    net = build_model(tiny())
    obj = BlockDistillObjective(net, torch.nn.functional.mse_loss, inputs)
    ssm, teacher = ssm_parameters(net), teacher_parameters(net)
    assert {id(p) for p in ssm}.isdisjoint({id(p) for p in teacher})
    assert len(ssm) + len(teacher) == len(list(net.parameters()))
    for p in teacher:
        p.requires_grad_(False)
    cfg = tiny("distill.lr=0.01")
    opt = build_optimizer(ssm, cfg.distill)
    before_t, x = snapshot(teacher), torch.rand(2, 3, 16, 16)
    losses = []
    for _ in range(15):
        loss, logs, _ = obj(x, x)
        assert {f"block_{s}" for s, _, _ in net.slots()} <= set(logs)
        loss.backward()
        opt.step()
        opt.zero_grad(set_to_none=True)
        losses.append(float(loss.detach()))
    assert not any(changed(before_t, teacher))
    assert losses[-1] < 0.7 * losses[0]


def test_distillation_with_teacher_inputs_matches_each_block_on_its_twins_input():
    torch.manual_seed(0)
    net = build_model(tiny())
    obj = BlockDistillObjective(net, torch.nn.functional.mse_loss, "teacher")
    x = torch.rand(2, 3, 16, 16)
    loss, _, out = obj(x, x)
    net.set_arch(Arch.uniform(net, "T"))
    with torch.no_grad():
        assert torch.allclose(out, net(x))  # the returned output is the teacher's
    # recompute by hand: run the teacher, feed each twin's input to the SSM block
    inputs, expected = {}, 0.0
    hooks = [slot.candidates["transformer"].register_forward_hook(
        lambda m, a, o, k=(s, i): inputs.__setitem__(k, (a[0], o))) for s, i, slot in net.slots()]
    with torch.no_grad():
        net(x)
        for s, i, slot in net.slots():
            x_in, y = inputs[(s, i)]
            expected += torch.nn.functional.mse_loss(slot.candidates["ssm"](x_in), y)
    for h in hooks:
        h.remove()
    assert torch.allclose(loss.detach(), expected, rtol=1e-5)
    with pytest.raises(ValueError, match="distill.inputs"):
        BlockDistillObjective(net, torch.nn.functional.mse_loss, "students")


def test_normalized_distillation_scores_each_block_against_the_identity():
    torch.manual_seed(0)
    net = build_model(tiny())  # fresh SSM blocks are the exact identity: every normalised block loss is 1
    obj = BlockDistillObjective(net, torch.nn.functional.mse_loss, "teacher", normalize=True)
    loss, _, _ = obj(torch.rand(2, 3, 16, 16), None)
    assert loss.item() == pytest.approx(len(net.slots()), rel=1e-4)

@pytest.mark.parametrize("inputs", ["teacher", "student"])
def test_distillation_task_term_adds_the_all_s_output_loss_to_the_block_losses(inputs):
    torch.manual_seed(0)
    net = build_model(tiny())
    x, target = torch.rand(2, 3, 16, 16), torch.rand(2, 3, 16, 16)
    blocks_only, logs0, _ = BlockDistillObjective(net, torch.nn.functional.mse_loss, inputs)(x, target)
    loss, logs, _ = BlockDistillObjective(net, torch.nn.functional.mse_loss, inputs, task_weight=2.0)(x, target)
    net.set_arch(Arch.uniform(net, "S"))
    with torch.no_grad():
        task = torch.nn.functional.l1_loss(net(x), target)
    assert "loss_task" not in logs0 and logs["loss_task"] == pytest.approx(task.item(), rel=1e-5)
    assert loss.item() == pytest.approx(blocks_only.item() + 2.0 * task.item(), rel=1e-5)
    loss.backward()  # the task term reaches every SSM block through the all-S chain, never the teacher
    assert all(p.grad is not None for p in ssm_parameters(net) if p.requires_grad)
    with pytest.raises(ValueError, match="task_weight"):
        BlockDistillObjective(net, torch.nn.functional.mse_loss, inputs, task_weight=-1.0)



@pytest.mark.parametrize("inputs,task_weight,passes", [("teacher", 0.0, 0), ("teacher", 1.0, 1), ("student", 0.0, 1),
                                                       ("student", 1.0, 1), ("both", 1.0, 1)])
def test_distillation_runs_the_all_s_chain_only_when_needed_and_once(inputs, task_weight, passes, monkeypatch):
    torch.manual_seed(0)
    net = build_model(tiny())
    obj = BlockDistillObjective(net, torch.nn.functional.mse_loss, inputs, task_weight=task_weight)
    calls = []
    run_chain = obj.run_chain
    monkeypatch.setattr(obj, "run_chain", lambda inp: calls.append(1) or run_chain(inp))
    for step in range(2):  # a fresh chain each step: never the previous batch's
        obj(torch.rand(2, 3, 16, 16), torch.rand(2, 3, 16, 16))
        assert len(calls) == passes * (step + 1)


def test_three_phases_then_subnet(tmp_path):
    cfg = tiny("supernet.sandwich=true", "supernet.distill_weight=0.5")
    metrics = train_supernet(cfg, tmp_path / "run")
    for key in ("teacher", "distill", "supernet", "all_S_before_distill", "degraded_input"):
        assert key in metrics
    assert "degraded input" in (tmp_path / "run" / "train.log").read_text()  # the yardstick is logged and summarised
    assert set(metrics["supernet"]) == {"all_T", "all_S", "TTTTSSSS"}
    ckpt = load_checkpoint(tmp_path / "run" / "supernet.pt")
    assert ckpt["phases_done"] == ["teacher", "distill", "supernet"] and "optimizer" not in ckpt
    last = load_checkpoint(tmp_path / "run" / "checkpoints" / "last.pt")
    assert last["phase"] == "supernet" and last["step"] == 3 and last["phase_complete"]
    assert "teacher" in last["extra"]  # the frozen distillation target travels with the checkpoint
    assert (tmp_path / "run" / "metrics.json").is_file() and (tmp_path / "run" / "train.log").is_file()
    assert any((tmp_path / "run" / "tb").iterdir())

    net, loaded_cfg = load_model(tmp_path / "run" / "supernet.pt")
    assert loaded_cfg == cfg and type(net).__name__ == "HybridUNet"
    arch = Arch.parse("TTSSTTSS")
    sub_metrics = train_subnet(cfg, arch, tmp_path / "run" / "supernet.pt", tmp_path / "sub", steps=2)
    assert "inherited" in sub_metrics and str(arch) in sub_metrics["subnet"]
    sub, _ = load_model(tmp_path / "sub" / "subnet.pt")
    assert type(sub).__name__ == "RestorationUNet"
    assert Arch.load(tmp_path / "sub" / "arch.json") == arch
    # the extracted weights start from the supernet's: before fine-tuning both give the same output
    net.set_arch(arch)
    x = torch.rand(1, 3, 24, 24)
    with torch.no_grad():
        assert torch.allclose(net.extract(arch)(x), net(x), atol=1e-6)


def test_phases_can_be_skipped(tmp_path):
    metrics = train_supernet(tiny("teacher.enabled=false", "distill.enabled=false", "supernet.steps=2"),
                             tmp_path / "run")
    assert "teacher" not in metrics and "distill" not in metrics and "supernet" in metrics


def test_fixed_arch_trains_one_path(tmp_path):
    cfg = tiny("teacher.enabled=false", "distill.enabled=false", "supernet.fixed_arch=SSSSSSSS",
               "supernet.steps=2", "supernet.weight_decay=0.5")
    torch.manual_seed(cfg.seed)
    init = build_model(cfg)
    train_supernet(cfg, tmp_path / "run")
    net, _ = load_model(tmp_path / "run" / "supernet.pt")
    t_init = dict(init.named_parameters())
    for name, p in net.named_parameters():
        if ".candidates.transformer." in name:
            assert torch.equal(p, t_init[name]), name
