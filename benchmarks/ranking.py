"""Ranking fidelity of the supernet: do its one-shot scores order archs as stand-alone training does?

    python benchmarks/ranking.py --supernet runs/reproduce/denoise-proxy/supernet/supernet.pt \
        --config configs/proxy/denoise.yaml [--archs 12] [--steps 400] [--init scratch|inherited]

Picks ``--archs`` stage-granularity archs spread over the transformer count (all-S ... all-T, seeded), scores
each with the supernet's weights on the validation set, trains each stand-alone with the same budget
(``train.py subnet``; ``scratch`` re-initialises the weights, ``inherited`` starts from the supernet's), evaluates
them, and prints Kendall tau and Spearman rho between the two PSNR lists. Reruns reuse finished trainings.
"""
from __future__ import annotations

import argparse
import json
import random
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def pick_archs(n: int, seed: int) -> list:
    from supernet import all_stage_archs

    by_count: dict[int, list] = {}
    for a in all_stage_archs():
        by_count.setdefault(a.count("T"), []).append(a)
    rng = random.Random(seed)
    for group in by_count.values():
        rng.shuffle(group)
    chosen, k = [], 0
    while len(chosen) < n:  # round-robin over transformer counts 0..8: spread over the latency range
        count = k % 9
        group = by_count[count]
        if group:
            chosen.append(group.pop())
        k += 1
    return chosen


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--supernet", required=True)
    ap.add_argument("--config", required=True)
    ap.add_argument("--archs", type=int, default=12)
    ap.add_argument("--steps", type=int, default=400)
    ap.add_argument("--init", choices=["scratch", "inherited"], default="scratch")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", default=None)
    args = ap.parse_args()
    if args.archs < 2:
        ap.error("--archs must be >= 2")
    import torch
    from scipy.stats import kendalltau, spearmanr

    from supernet.checkpoint import atomic_save, load_checkpoint, load_model
    from supernet.data import build_datasets
    from supernet.evaluation import evaluate

    out = Path(args.out or Path(args.supernet).parent.parent / f"ranking-{args.init}")
    out.mkdir(parents=True, exist_ok=True)
    supernet, cfg = load_model(args.supernet)
    _, val = build_datasets(cfg.data, cfg.task, cfg.seed)
    source = Path(args.supernet)
    if args.init == "scratch":  # an untrained supernet checkpoint: extracting from it gives a fresh subnet
        source = out / "init.pt"
        if not source.exists():
            ckpt = load_checkpoint(args.supernet)
            torch.manual_seed(args.seed)
            fresh = type(supernet)(**supernet.config)
            atomic_save({**{k: v for k, v in ckpt.items() if k not in ("ema", "metrics")}, "model":
                         fresh.state_dict(), "ema": None, "metrics": {}, "phases_done": []}, source)
    rows = []
    for arch in pick_archs(args.archs, args.seed):
        one_shot = evaluate(supernet, val, cfg.task, arch=arch)["psnr"]
        sub_dir = out / f"subnet-{arch}"
        if not (sub_dir / "subnet.pt").exists():
            cmd = [sys.executable, "train.py", "subnet", "--arch", str(arch), "--from", str(source), "--config",
                   args.config, "--steps", str(args.steps), "--out", str(sub_dir)]
            if (sub_dir / "checkpoints" / "last.pt").exists():
                cmd.append("--resume")
            subprocess.run(cmd, cwd=ROOT, check=True)
        model, _ = load_model(sub_dir / "subnet.pt")
        alone = evaluate(model, val, cfg.task)["psnr"]
        rows.append({"arch": str(arch), "transformers": arch.count("T"), "supernet_psnr": one_shot,
                     "standalone_psnr": alone})
        print(f"{arch}  supernet {one_shot:.2f} dB  stand-alone {alone:.2f} dB", flush=True)
    a = [r["supernet_psnr"] for r in rows]
    b = [r["standalone_psnr"] for r in rows]
    tau, rho = kendalltau(a, b).statistic, spearmanr(a, b).statistic
    (out / "ranking.json").write_text(json.dumps({"rows": rows, "kendall_tau": tau, "spearman": rho,
                                                  "steps": args.steps, "init": args.init}, indent=2) + "\n")
    print(f"\n| arch | T slots | supernet PSNR | stand-alone PSNR ({args.init}, {args.steps} steps) |")
    print("|---|---|---|---|")
    for r in sorted(rows, key=lambda r: r["transformers"]):
        print(f"| `{r['arch']}` | {r['transformers']} | {r['supernet_psnr']:.2f} | {r['standalone_psnr']:.2f} |")
    print(f"\nKendall tau {tau:.3f}, Spearman rho {rho:.3f} over {len(rows)} archs (goal: tau >= 0.7)")


if __name__ == "__main__":
    main()
