#!/usr/bin/env python
"""Images/s of supernet training (a random path per step) vs training the same paths extracted stand-alone.

Both sides run the training loop's own objective and optimiser (``PathObjective``, AdamW over all the network's
parameters, ``zero_grad(set_to_none=True)``, gradient clipping, AMP on CUDA) on the same batch and device. The
supernet side samples its path per step with ``step_arch`` and calls ``set_arch``; the stand-alone side trains
``net.extract(arch)`` for the same paths, so path cost differences cancel. Rounds alternate the two sides and the
median round is reported, which keeps a shared machine's noise out of the ratio.

    python benchmarks/train_throughput.py --config configs/demo.yaml            # CPU
    python benchmarks/train_throughput.py --config configs/denoise.yaml --device cuda --batch 8 --patch 128
"""
from __future__ import annotations

import argparse
import contextlib
import statistics
import time

import torch

from supernet.checkpoint import build_model
from supernet.config import load_config
from supernet.training.phases import PathObjective, get_loss, step_arch
from supernet.training.schedule import build_optimizer


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def run_steps(objective, params, optimizer, paths, inp, target, clip, autocast, device, set_path) -> float:
    """Seconds for one training step per entry of ``paths``."""
    _sync(device)
    t0 = time.perf_counter()
    for arch in paths:
        with autocast():
            loss, _, _ = objective(inp, target, [arch] if set_path else [None])
        loss.backward()
        torch.nn.utils.clip_grad_norm_([p for p in params if p.grad is not None], clip)
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
    _sync(device)
    return time.perf_counter() - t0


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--config", default="configs/demo.yaml")
    ap.add_argument("--set", dest="overrides", action="append", default=[])
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--batch", type=int, help="default: data.batch_size")
    ap.add_argument("--patch", type=int, help="default: data.patch_size")
    ap.add_argument("--paths", type=int, default=4, help="sampled paths per round")
    ap.add_argument("--steps", type=int, default=3, help="steps per path per round")
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--threads", type=int, default=0, help="torch CPU threads (0: leave as is)")
    args = ap.parse_args()

    if args.threads:
        torch.set_num_threads(args.threads)
    cfg = load_config(args.config, args.overrides)
    device = torch.device(args.device)
    torch.manual_seed(cfg.seed)
    net = build_model(cfg).to(device)
    batch, patch = args.batch or cfg.data.batch_size, args.patch or cfg.data.patch_size
    g = torch.Generator().manual_seed(0)
    target = torch.rand(batch, cfg.model.inp_channels, patch, patch, generator=g).to(device)
    inp = (target + 0.1 * torch.randn(target.shape, generator=g).to(device)).clamp(0, 1)
    amp = device.type == "cuda" and cfg.train.amp
    dtype = torch.bfloat16 if cfg.train.amp_dtype == "bfloat16" else torch.float16
    autocast = (lambda: torch.autocast("cuda", dtype=dtype)) if amp else contextlib.nullcontext
    loss = get_loss(cfg.supernet.loss, "supernet.loss")
    clip = cfg.train.grad_clip or 1e9

    # The supernet side draws a path per step exactly as training does; the subnets are those same paths.
    steps = [s for s in range(args.paths)]
    archs = [step_arch(net, cfg.seed, s, cfg.supernet.granularity, cfg.supernet.p_transformer) for s in steps]
    super_obj = PathObjective(net, loss)
    super_params = list(net.parameters())
    super_opt = build_optimizer(super_params, cfg.supernet)
    subs = []
    for arch in archs:
        sub = net.extract(arch).to(device)
        sub_params = list(sub.parameters())
        subs.append((PathObjective(sub, loss), sub_params, build_optimizer(sub_params, cfg.supernet)))

    def supernet_round() -> float:
        total = 0.0
        for s, arch in zip(steps, archs):
            sampled = step_arch(net, cfg.seed, s, cfg.supernet.granularity, cfg.supernet.p_transformer)
            assert sampled == arch
            total += run_steps(super_obj, super_params, super_opt, [sampled] * args.steps, inp, target, clip,
                               autocast, device, set_path=True)
        return total

    def subnet_round() -> float:
        return sum(run_steps(obj, params, opt, [None] * args.steps, inp, target, clip, autocast, device, False)
                   for obj, params, opt in subs)

    supernet_round(), subnet_round()  # warm-up (allocator, kernels, optimiser state)
    t_super, t_sub = [], []
    for r in range(args.rounds):
        order = (supernet_round, subnet_round) if r % 2 == 0 else (subnet_round, supernet_round)
        for fn in order:
            (t_super if fn is supernet_round else t_sub).append(fn())
    images = batch * args.steps * len(archs)
    ips_super, ips_sub = images / statistics.median(t_super), images / statistics.median(t_sub)
    overhead = (ips_sub / ips_super - 1.0) * 100.0
    dev = torch.cuda.get_device_name(device) if device.type == "cuda" else f"CPU, {torch.get_num_threads()} threads"
    print(f"device: {dev}; config {args.config}; batch {batch} x {patch}x{patch}; AMP {amp}; "
          f"paths {', '.join(str(a) for a in archs)}")
    print(f"supernet (random path per step): {ips_super:8.2f} img/s")
    print(f"stand-alone subnets (same paths): {ips_sub:8.2f} img/s")
    print(f"supernet overhead: {overhead:+.1f}%  (median of {args.rounds} alternating rounds)")


if __name__ == "__main__":
    main()
