"""DDP with 2 gloo processes (torchrun): same sampled paths and identical weights on both ranks."""
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import torch

ROOT = Path(__file__).resolve().parents[2]
TINY = ["model.dim=8", "model.num_blocks=[1,1,1,1]", "model.num_refinement_blocks=1", "model.heads=[1,1,1,1]",
        "data.patch_size=16", "data.batch_size=2", "data.val_count=1", "data.val_crop=32", "data.repeat=4",
        "data.embedded_images=[astronaut,coffee,chelsea,rocket]", "train.device=cpu", "train.log_every=1",
        "train.checkpoint_every=2", "train.val_archs=[]", "teacher.steps=2", "distill.steps=2",
        "supernet.steps=5", "supernet.sandwich=false", "supernet.weight_decay=0.5"]

WORKER = textwrap.dedent("""
    import os, sys
    import torch
    import supernet.training.run as run
    from supernet.config import load_config

    out = sys.argv[1]
    captured, paths = {}, []
    build, sample = run.build_model, run.step_arch

    def build_and_keep(cfg):
        captured["net"] = build(cfg)
        captured["init"] = {k: v.clone() for k, v in captured["net"].state_dict().items()}
        return captured["net"]

    def sample_and_record(net, seed, step, granularity, p):
        arch = sample(net, seed, step, granularity, p)
        paths.append((step, str(arch)))
        return arch

    run.build_model, run.step_arch = build_and_keep, sample_and_record
    run.train_supernet(load_config(None, sys.argv[2:]), out)
    rank = int(os.environ["RANK"])
    torch.save({"state": captured["net"].state_dict(), "init": captured["init"], "paths": paths},
               os.path.join(out, f"rank{rank}.pt"))
""")


@pytest.mark.slow
def test_two_gloo_ranks_share_paths_and_weights(tmp_path):
    worker = tmp_path / "worker.py"
    worker.write_text(WORKER)
    out = tmp_path / "run"
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(ROOT)}
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2", str(worker),
           str(out), *TINY]
    done = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    r0 = torch.load(out / "rank0.pt", weights_only=False)
    r1 = torch.load(out / "rank1.pt", weights_only=False)
    assert r0["paths"] == r1["paths"] and len(r0["paths"]) == 5
    assert len({p for _, p in r0["paths"]}) > 1
    differ = [k for k in r0["state"] if not torch.equal(r0["state"][k], r1["state"][k])]
    assert not differ, f"ranks diverged: {differ[:5]}"
    trained = [k for k in r0["state"] if not torch.equal(r0["state"][k], r0["init"][k])]
    assert any(".candidates.ssm." in k for k in trained) and any(".candidates.transformer." in k for k in trained)
    # the written checkpoint is rank 0's network, and both ranks' data shards were used (world size 2)
    ckpt = torch.load(out / "supernet.pt", weights_only=False)
    assert all(torch.equal(ckpt["model"][k], r0["state"][k]) for k in ckpt["model"])
    assert "world 2" in (out / "train.log").read_text()


@pytest.mark.slow
def test_unused_candidates_untouched_under_ddp(tmp_path):
    """Only SSM paths are trained (fixed all-S): under DDP every transformer candidate keeps its initial
    weights although weight decay is on, so DDP left their gradients None."""
    worker = tmp_path / "worker.py"
    worker.write_text(WORKER)
    out = tmp_path / "run"
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(ROOT)}
    sets = TINY + ["teacher.enabled=false", "distill.enabled=false", "supernet.fixed_arch=SSSSSSSS",
                   "supernet.steps=3"]
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2", str(worker),
           str(out), *sets]
    done = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    r0 = torch.load(out / "rank0.pt", weights_only=False)
    t_keys = [k for k in r0["state"] if ".candidates.transformer." in k]
    assert t_keys and all(torch.equal(r0["state"][k], r0["init"][k]) for k in t_keys)
    assert any(not torch.equal(r0["state"][k], r0["init"][k]) for k in r0["state"] if ".candidates.ssm." in k)
