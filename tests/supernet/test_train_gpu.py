"""CUDA: the phases run under AMP (bfloat16, and float16 with a GradScaler) and stay finite.

The default cases run the SSM blocks' chunked PyTorch scan (``model.ssm.scan_impl=torch``): they test the training
loop under autocast, and each took 13.5-23.4 s on an H200 (``benchmarks/gpu_amp_train.py``; results in
``benchmarks/results/gpu_train_tests_h200.log``). The fused Triton kernel agrees with that scan in
``test_scan.py``. The same training on the Triton kernel (``auto``) pays mamba-ssm's first-use autotuning, about
5 s per kernel and shape key, and was still in the distillation phase after 330 s on the H200, so it is marked
slow."""
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
# the options of configs/proxy/denoise-conv-gate.yaml and derain-gated.yaml: conv_gate, pooled and gated stages
CONV_GATE_POOLED = ["model.ssm.conv_gate=true", "model.ssm.norm=none", "model.ssm.mlp_ratio=2",
                    "model.ssm.stage_options={enc1: {scan_pool: 2, conv_gate: false}, "
                    "refinement: {scan_pool: 4, gate: true}}"]
CASES = {"bfloat16": ("bfloat16", []), "float16": ("float16", []),
         "bfloat16-conv-gate-pooled": ("bfloat16", CONV_GATE_POOLED)}


def train_case(case: str, scan_impl: str, out):
    """Train the tiny supernet of one case; returns the metrics and the saved checkpoint."""
    dtype, ssm = CASES[case]
    cfg = load_config(None, TINY + ssm + [f"train.amp_dtype={dtype}", f"model.ssm.scan_impl={scan_impl}"])
    metrics = train_supernet(cfg, out)
    return metrics, load_checkpoint(out / "supernet.pt")


def finite_weights(ckpt) -> bool:
    return all(bool(torch.isfinite(v).all()) for v in ckpt["model"].values() if v.is_floating_point())


def check_finite(metrics, ckpt):
    assert metrics["supernet"]["all_T"]["psnr"] > 0
    assert finite_weights(ckpt)


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
@pytest.mark.parametrize("case", list(CASES))
def test_amp_phases_on_cuda(tmp_path, case):
    check_finite(*train_case(case, "torch", tmp_path / "run"))


@pytest.mark.gpu
@pytest.mark.slow
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_amp_phases_on_triton_kernel(tmp_path):
    """The same on mamba-ssm's kernel: minutes of autotuning on a fresh Triton cache (see the module docstring)."""
    from supernet.scan import mamba_available
    if not mamba_available():
        pytest.skip("needs mamba-ssm's kernels")
    check_finite(*train_case("bfloat16", "auto", tmp_path / "run"))
