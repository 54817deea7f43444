"""CUDA: the phases run under AMP (bfloat16, and float16 with a GradScaler) and stay finite.

Unverified on a GPU so far: on an H200 each case ran past 160 s without a result (benchmarks/results/
gpu_train_tests_h200.log); allow minutes per case."""
import pytest
import torch

from supernet.checkpoint import load_checkpoint
from supernet.config import load_config
from supernet.training import train_supernet

TINY = ["model.dim=8", "model.num_blocks=[1,1,1,1]", "model.num_refinement_blocks=1", "model.heads=[1,1,1,1]",
        "data.patch_size=32", "data.batch_size=2", "data.val_count=1", "data.val_crop=32", "data.repeat=1",
        "data.embedded_images=[astronaut,coffee,chelsea,rocket]", "train.device=cuda", "train.amp=true",
        "train.val_archs=[]", "teacher.steps=3", "distill.steps=3", "supernet.steps=3", "supernet.sandwich=true",
        "train.ema_decay=0.9"]


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
@pytest.mark.parametrize("dtype, ssm", [
    ("bfloat16", []),
    ("float16", []),
    # the options of configs/proxy/denoise-conv-gate.yaml and derain-gated.yaml: conv_gate, pooled and gated stages
    ("bfloat16", ["model.ssm.conv_gate=true", "model.ssm.norm=none", "model.ssm.mlp_ratio=2",
                  "model.ssm.stage_options={enc1: {scan_pool: 2, conv_gate: false}, "
                  "refinement: {scan_pool: 4, gate: true}}"]),
], ids=["bfloat16", "float16", "bfloat16-conv-gate-pooled"])
def test_amp_phases_on_cuda(tmp_path, dtype, ssm):
    metrics = train_supernet(load_config(None, TINY + ssm + [f"train.amp_dtype={dtype}"]), tmp_path / "run")
    assert metrics["supernet"]["all_T"]["psnr"] > 0
    ckpt = load_checkpoint(tmp_path / "run" / "supernet.pt")
    assert all(torch.isfinite(v).all() for v in ckpt["model"].values() if v.is_floating_point())
