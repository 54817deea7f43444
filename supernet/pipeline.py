"""The whole ENS pipeline as users run it, step by step, reusing finished steps on a rerun.

supernet training (all phases) -> ``build_lut.py --backend local`` -> ``search.py`` -> ``train.py subnet`` for the
chosen arch and for the all-T / all-S baselines (same budget) -> evaluation -> ONNX export -> one table with PSNR,
SSIM, predicted and measured latency and the speed-up over all-T. ``make demo`` runs it on ``configs/demo.yaml``;
``benchmarks/reproduce.py`` on the proxy and full recipes. Each step is the real command line, run in a
subprocess, so the pipeline exercises exactly what users type.
"""
from __future__ import annotations

import json
import os
import re
import shlex
import shutil
import statistics
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Sequence

ROOT = Path(__file__).resolve().parents[1]
# all-T gaining less than this over its degraded input has barely learnt the task: gaps between archs carry no signal
MIN_RESTORATION_GAIN_DB = 1.0


@dataclass
class PipelineSpec:
    """What to run. Paths are relative to the repository root unless absolute."""

    config: str = "configs/demo.yaml"
    out: str = "runs/demo"
    resolution: int = 128  # latency (LUT, search and measured) at resolution x resolution
    threads: int = 2
    finetune_steps: int = 150  # same budget for the chosen arch and the baselines
    lut_repeats: int = 5
    lut_rounds: int = 3  # measure every entry this many times, round-robin, and keep the median (noisy hosts)
    lut_fidelity_archs: int = 10
    # "boundary_pairs": the LUT build also times every two consecutive blocks together and corrects the sums for
    # work the runtime fuses across block boundaries (build_lut.py --calibrate); the search then uses the correction
    lut_calibrate: str = "none"
    search_args: Sequence[str] = ()
    budget_ms: float | None = None
    budget_fraction: float | None = None  # budget = this fraction of the LUT's all-T prediction (e.g. 1/3)
    latency_repeats: int = 7
    latency_rounds: int = 3  # end-to-end timings: this many round-robin rounds over the compared archs, pooled
    chosen: Sequence[str] = ("knee",)  # keys of chosen.json to fine-tune (knee, best_under_budget)
    # archs to fine-tune, evaluate and time as well, whatever the search chose (e.g. another seed's choice)
    extra_archs: Sequence[str] = ()
    overrides: Sequence[str] = field(default_factory=list)  # --set KEY=VALUE for every training command
    # fine-tuning of every arch but all-T adds finetune_distill x L1 to a frozen teacher's output: the fine-tuned
    # all-T baseline ("all-t") or the supernet's all-T path ("supernet"); all-T itself is always trained by L1 alone
    finetune_distill: float = 0.0
    finetune_teacher: str = "all-t"
    # and finetune_feature_distill x the distance of its 8 stage outputs to the same teacher's (subnet.feature_...)
    finetune_feature_distill: float = 0.0
    # not None: every fine-tuning (the re-ranking's included) draws its batches with this seed instead of the
    # config's (the supernet keeps its own): the same supernet fine-tuned again, to measure the fine-tuning's noise
    finetune_seed: int | None = None

    # > 0: after the search, re-rank its candidates within budget x (1 + rerank_slack) by fine-tunings of this many
    # steps, the best 1 / rerank_eta trained rerank_eta x longer, for rerank_rungs rungs (rerank.py); the best is
    # fine-tuned like the others as "ENS reranked"
    rerank_steps: int = 0
    rerank_rungs: int = 2
    rerank_eta: int = 3
    rerank_slack: float = 0.1
    rerank_max_candidates: int = 32  # the best supernet scores first
    # re-rank only candidates measured on this host at least this many times faster than all-T (None: predicted only)
    rerank_min_speedup: float | None = None

    def __post_init__(self) -> None:
        for key in ("finetune_distill", "finetune_feature_distill", "rerank_steps", "rerank_slack"):
            if getattr(self, key) < 0:
                raise ValueError(f"{key} must be >= 0, got {getattr(self, key)}")
        if self.finetune_seed is not None and self.finetune_seed < 0:
            raise ValueError(f"finetune_seed must be >= 0 or None, got {self.finetune_seed}")
        from latency_lut.lut import CALIBRATIONS, FIT_MIN_NETWORKS

        if self.lut_calibrate not in CALIBRATIONS:
            raise ValueError(f"lut_calibrate must be one of {', '.join(CALIBRATIONS)}, got {self.lut_calibrate!r}")
        if self.lut_calibrate == "fit" and self.lut_fidelity_archs < FIT_MIN_NETWORKS:
            raise ValueError(f"lut_calibrate 'fit' fits block scales to the LUT's fidelity networks: needs "
                             f"lut_fidelity_archs >= {FIT_MIN_NETWORKS}, got {self.lut_fidelity_archs}")
        if self.rerank_min_speedup is not None and not (self.rerank_steps > 0 and self.rerank_min_speedup > 0):
            raise ValueError(f"rerank_min_speedup must be > 0 and needs rerank_steps > 0, got "
                             f"{self.rerank_min_speedup} with rerank_steps {self.rerank_steps}")
        if self.finetune_teacher not in FINETUNE_TEACHERS:
            raise ValueError(f"finetune_teacher must be one of {', '.join(FINETUNE_TEACHERS)}, got "
                             f"{self.finetune_teacher!r}")


FINETUNE_TEACHERS = ("all-t", "supernet")


# what a finished run shares with another that differs only from fine-tuning on (another budget, say)
REUSABLE_STEPS = ("supernet/supernet.pt", "lut.json", "search/chosen.json")


def reuse_steps(from_run: str | Path, out: str | Path) -> list[Path]:
    """Copy ``from_run``'s supernet checkpoint, LUT and search results (not a re-ranking: it depends on the
    fine-tuning settings) into ``out`` (files already there stay), so
    :func:`run_pipeline` on ``out`` redoes only fine-tuning, evaluation and timing. Returns the copied files.

    Raises ``FileNotFoundError`` naming every missing file when ``from_run`` is not a finished run.
    """
    src, dst = Path(from_run), Path(out)
    missing = [str(src / rel) for rel in REUSABLE_STEPS if not (src / rel).is_file()]
    if missing:
        raise FileNotFoundError(f"--from-run {src}: not a finished pipeline run, missing {', '.join(missing)}")
    if src.resolve() == dst.resolve():
        raise ValueError(f"--from-run {src}: is the output folder itself; give another --out")
    copied = []
    rerank = src / "search" / "rerank"  # its choice depends on the fine-tuning settings, which the new run changes
    for f in [src / "supernet" / "supernet.pt", src / "lut.json", *sorted((src / "search").rglob("*"))]:
        target = dst / f.relative_to(src)
        if f.is_file() and not target.exists() and rerank not in f.parents:
            target.parent.mkdir(parents=True, exist_ok=True)
            tmp = target.with_name(target.name + ".tmp")
            shutil.copy2(f, tmp)
            os.replace(tmp, target)  # a killed copy never leaves a file that looks finished
            copied.append(target)
    return copied


def _run(cmd: list[str], log: Path, tolerated: Sequence[int] = ()) -> int:
    """Run a step, streaming its output to the terminal and to ``log``; stop the pipeline if it fails with an exit
    status not in ``tolerated`` (returned, for the caller to handle)."""
    print(f"\n$ {shlex.join(cmd)}", flush=True)
    log.parent.mkdir(parents=True, exist_ok=True)
    with open(log, "a") as f:
        f.write(f"\n$ {shlex.join(cmd)}\n")
        f.flush()
        proc = subprocess.Popen(cmd, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                                env={**os.environ, "PYTHONUNBUFFERED": "1"})
        for line in proc.stdout:
            sys.stdout.write(line)
            f.write(line)
        rc = proc.wait()
    if rc != 0 and rc not in tolerated:
        raise SystemExit(f"pipeline step failed (exit {rc}): {shlex.join(cmd)}\nfull log: {log}")
    return rc


# a fine-tuning that diverged (train.py's exit status DIVERGED_EXIT) leaves this file in the arch's folder: the
# pipeline reports the arch as diverged and goes on; delete the file (and lower the lr) to fine-tune it again
DIVERGED_MARKER = "diverged.txt"


def _diverged_message(line: str) -> str:
    """The training's own words from one log line: progress bars share the line up to their last carriage
    return, and train.py prefixes its message with ``error: ``."""
    line = line.rsplit("\r", 1)[-1]
    return line.split("error: ", 1)[-1].strip()


def _finetune(cmd: list[str], sub_dir: Path, log: Path, required: bool) -> str | None:
    """Fine-tune one arch. A divergence of an arch that is not ``required`` is written to its marker file and
    returned (the training's own message) instead of stopping the pipeline."""
    from supernet.training.cli import DIVERGED_EXIT

    start = log.stat().st_size if log.exists() else 0
    rc = _run(cmd, log, tolerated=() if required else (DIVERGED_EXIT,))
    if rc == 0:
        return None
    with open(log) as f:
        f.seek(start)
        found = [_diverged_message(line) for line in f if "not finite" in line]
    message = found[-1] if found else f"training diverged (exit {rc})"
    sub_dir.mkdir(parents=True, exist_ok=True)
    (sub_dir / DIVERGED_MARKER).write_text(message + "\n")
    print(f"fine-tuning diverged; left out of the table: {sub_dir} ({DIVERGED_MARKER})", flush=True)
    return message


def _check_reused_seed(subnet: Path, wanted: int) -> None:
    """A finished fine-tuning is reused only if its batches were drawn with the seed this run asks for, so that a
    table never names a seed its rows were not trained with (e.g. ``--finetune-seed`` on an earlier run's folder)."""
    from supernet.checkpoint import config_of, load_checkpoint

    stored = config_of(load_checkpoint(subnet)).seed
    if stored != wanted:
        raise ValueError(f"{subnet}: fine-tuned with seed {stored}, but this run fine-tunes with seed {wanted} "
                         f"(--finetune-seed); give another --out or delete {subnet.parent} to fine-tune it again")


def _check_reused_rerank(result: Path, cmd: list[str]) -> None:
    """A finished re-ranking is reused only if it ran with the settings ``cmd`` (this run's rerank.py command) asks
    for: seed, distillation, steps, budget (a result written before it kept its settings is reused with a note)."""
    from search.rerank import settings_mismatch
    from search.rerank_cli import settings_from_args

    try:
        stored = json.loads(result.read_text()).get("settings")
    except ValueError as e:
        raise ValueError(f"{result} is not JSON ({e}); delete {result.parent} to re-rank again") from None
    if stored is None:
        print(f"note: {result} does not record its settings (made before they were kept); reused unchecked",
              flush=True)
        return
    differ = settings_mismatch(stored, settings_from_args(cmd[2:]))
    if differ:
        raise ValueError(f"{result}: re-ranked with other settings than this run's ({differ}); give another --out "
                         f"or delete {result.parent} to re-rank again")


def lut_calibration_of(lut: Path) -> str:
    """The calibration method a LUT file was built with ("none" without one); a file that is not a JSON object is
    named in a ValueError."""
    try:
        return (json.loads(lut.read_text()).get("calibration") or {}).get("method", "none")
    except (ValueError, AttributeError) as e:
        raise ValueError(f"{lut} is not a LUT JSON object ({e})") from None


def _check_lut_calibration(lut: Path, wanted: str) -> None:
    """A finished LUT is reused as it is: refuse one built with another calibration than the run asks for."""
    built = lut_calibration_of(lut)
    if built != wanted:
        raise SystemExit(f"{lut}: built with calibration {built!r}, but this run asks for {wanted!r} "
                         f"(--lut-calibrate); delete the file to rebuild it, or use another --out")


def _lut_command(spec: PipelineSpec, py: str, lut: Path) -> list[str]:
    return [py, "build_lut.py", "--backend", "local", "--config", spec.config, *_sets(spec), "--resolution",
            str(spec.resolution), "--threads", str(spec.threads), "--repeats", str(spec.lut_repeats),
            "--rounds", str(spec.lut_rounds), "--fidelity-archs", str(spec.lut_fidelity_archs),
            "--calibrate", spec.lut_calibrate, "--out", str(lut)]


def _rerank_command(spec: PipelineSpec, py: str, ckpt: Path, search_dir: Path, out: Path, budget: float | None,
                    finetune_sets: list[str]) -> list[str]:
    """``rerank.py`` on the search's candidates with the fine-tuning settings of every hybrid."""
    cmd = [py, "rerank.py", "--search-dir", str(search_dir), "--supernet", str(ckpt), "--config", spec.config,
           "--out", str(out), "--steps", str(spec.rerank_steps), "--rungs", str(spec.rerank_rungs), "--eta",
           str(spec.rerank_eta), "--slack", f"{spec.rerank_slack:g}", "--max-candidates",
           str(spec.rerank_max_candidates), *_sets(spec), *finetune_sets]
    if spec.rerank_min_speedup is not None:
        cmd += ["--min-speedup", f"{spec.rerank_min_speedup:g}"]
    return cmd + (["--budget-ms", f"{budget:.3f}"] if budget is not None else [])


def _sets(spec: PipelineSpec) -> list[str]:
    return [a for kv in spec.overrides for a in ("--set", kv)]


def _finetune_sets(spec: PipelineSpec, arch, all_t, out: Path) -> list[str]:
    """The ``--set`` options that give one arch's fine-tuning the spec's data-order seed (every arch) and its output
    and stage-feature distillation (none for all-T)."""
    seed = [] if spec.finetune_seed is None else ["--set", f"seed={spec.finetune_seed}"]
    features = spec.finetune_feature_distill > 0
    if spec.finetune_distill <= 0 and not features:
        return seed
    if arch == all_t:
        return seed + ["--set", "subnet.distill_weight=0"] + (
            ["--set", "subnet.feature_distill_weight=0"] if features else [])
    sets = seed + ["--set", f"subnet.distill_weight={spec.finetune_distill:g}"]
    if features:
        sets += ["--set", f"subnet.feature_distill_weight={spec.finetune_feature_distill:g}"]
    teacher = str(out / f"subnet-{all_t}" / "subnet.pt") if spec.finetune_teacher == "all-t" else ""
    return sets + ["--set", f"subnet.teacher={teacher}" if teacher else "subnet.teacher=''"]


def time_rounds(paths: dict[str, Path | str], shape: tuple[int, ...], threads: int, repeats: int, rounds: int,
                on_round: Callable[[int, dict[str, float]], None] | None = None) -> dict[str, list[list[float]]]:
    """Time ONNX files end to end with the LUT's own local backend (onnxruntime in a fresh process per model, same
    allocator settings), ``rounds`` times round-robin, so a burst of load on a shared host lands on every model
    rather than on one. Returns, per name, one list of run times (ms) per round (the runner's median where it
    reports no per-run times); ``on_round(i, {name: that round's median})`` is called after each round."""
    from latency_lut.backends.local import LocalBackend

    if rounds < 1:
        raise ValueError(f"rounds: expected >= 1, got {rounds}")
    out: dict[str, list[list[float]]] = {name: [] for name in paths}
    backend = LocalBackend()
    try:
        for i in range(rounds):
            for name, path in paths.items():
                r = backend.measure(path, [tuple(shape)], warmup=2, repeats=repeats, threads=threads)
                out[name].append(list(r.samples_ms or (r.stats.median,)))
            if on_round is not None:
                on_round(i, {name: statistics.median(v[-1]) for name, v in out.items()})
    finally:
        backend.close()
    return out


def measure_latency(models: dict[str, Any], resolution: int, threads: int, repeats: int, out_dir: Path,
                    channels: int = 3, rounds: int = 1) -> dict[str, float]:
    """Export each model to ONNX and time it with :func:`time_rounds`, so measured and predicted latencies are
    taken alike and this process's torch threads cannot compete with onnxruntime's. Median ms per model over all
    the pooled runs of every round."""
    import torch

    from supernet.export import export_onnx

    if rounds < 1:
        raise ValueError(f"rounds: expected >= 1, got {rounds}")
    x = torch.rand(1, channels, resolution, resolution)
    paths = {name: export_onnx(model.eval(), x, out_dir / f"{name}.onnx") for name, model in models.items()}
    per_round = time_rounds(paths, tuple(x.shape), threads, repeats, rounds)
    return {name: statistics.median(t for runs in v for t in runs) for name, v in per_round.items()}


def run_pipeline(spec: PipelineSpec) -> dict:
    """Run (or resume) every step; returns the summary written to ``<out>/summary.json``."""
    py = sys.executable
    out = (ROOT / spec.out).resolve()
    log = out / "pipeline.log"
    t_start = time.time()
    supernet_dir, lut, search_dir = out / "supernet", out / "lut.json", out / "search"
    ckpt = supernet_dir / "supernet.pt"

    # 1. supernet: teacher -> distillation -> supernet (resumes a killed run)
    if not ckpt.exists():
        cmd = [py, "train.py", "supernet", "--config", spec.config, "--out", str(supernet_dir), *_sets(spec)]
        if (supernet_dir / "checkpoints" / "last.pt").exists():
            cmd.append("--resume")
        _run(cmd, log)
    # 2. latency LUT on this host (the build resumes by itself and skips measured entries)
    if not lut.exists() or not json.loads(lut.read_text()).get("fidelity"):
        _run(_lut_command(spec, py, lut), log)
    _check_lut_calibration(lut, spec.lut_calibrate)
    # 3. search
    budget = spec.budget_ms
    if budget is None and spec.budget_fraction:
        from latency_lut import LUT
        from supernet import Arch
        from supernet.config import load_config
        from supernet.unet import unet_stage_sizes

        model_cfg = load_config(spec.config, list(spec.overrides)).model  # sizes only: no network is built
        sizes = unet_stage_sizes(model_cfg.num_blocks, model_cfg.num_refinement_blocks)
        budget = spec.budget_fraction * LUT.load(lut).predict(Arch.uniform(sizes, "T"), spec.resolution,
                                                              spec.resolution)
        print(f"latency budget: {spec.budget_fraction:.3f} x predicted all-T = {budget:.1f} ms", flush=True)
    if not (search_dir / "chosen.json").exists():
        # no --config: the search takes the model, task and validation set from the checkpoint (overrides included)
        cmd = [py, "search.py", "--supernet", str(ckpt), "--lut", str(lut),
               "--resolution", str(spec.resolution), "--out", str(search_dir), *spec.search_args]
        if budget is not None:
            cmd += ["--budget-ms", f"{budget:.3f}"]
        if (search_dir / "state").exists() or any(search_dir.glob("*.pkl")):
            cmd.append("--resume")
        _run(cmd, log)
    chosen = json.loads((search_dir / "chosen.json").read_text())

    from supernet import Arch
    from supernet.checkpoint import load_model

    supernet, cfg = load_model(ckpt)
    archs: dict[str, Arch] = {"all-T": Arch.uniform(supernet, "T"), "all-S": Arch.uniform(supernet, "S")}
    for key in spec.chosen:
        if isinstance(chosen.get(key), dict) and chosen[key].get("arch"):
            archs[f"ENS {key}"] = Arch.parse(chosen[key]["arch"])
    for text in spec.extra_archs:
        try:
            arch = Arch.parse(text, supernet)
        except ValueError as e:
            raise ValueError(f"extra arch {text!r} does not fit the supernet {ckpt}: {e}") from None
        archs[f"named {arch}"] = arch
    # 4. stand-alone fine-tuning with the same budget for every arch (reruns skip finished ones); all-T first: the
    # others may distil it, and so may the re-ranking's short fine-tunings
    all_t, all_s = archs["all-T"], archs["all-S"]
    diverged: dict[str, dict[str, str]] = {}

    finetune_seed = cfg.seed if spec.finetune_seed is None else spec.finetune_seed

    def finetune(label: str, arch: Arch) -> None:
        sub_dir = out / f"subnet-{arch}"
        message = None
        if (sub_dir / DIVERGED_MARKER).exists():  # diverged in an earlier run: not retried
            message = (sub_dir / DIVERGED_MARKER).read_text().strip()
        elif (sub_dir / "subnet.pt").exists():
            _check_reused_seed(sub_dir / "subnet.pt", finetune_seed)
        else:
            cmd = [py, "train.py", "subnet", "--arch", str(arch), "--from", str(ckpt), "--config", spec.config,
                   "--steps", str(spec.finetune_steps), "--out", str(sub_dir), *_sets(spec),
                   *_finetune_sets(spec, arch, all_t, out)]
            if (sub_dir / "checkpoints" / "last.pt").exists():
                cmd.append("--resume")
            message = _finetune(cmd, sub_dir, log, required=arch == all_t)  # the baseline must train
        if message:
            diverged[label] = {"arch": str(arch), "message": message}

    finetune("all-T", all_t)
    if spec.rerank_steps:  # 3b. re-rank the search's candidates by short fine-tunings; the best joins the table
        rerank_dir = search_dir / "rerank"
        # hybrids share their fine-tuning settings: all-S's
        cmd = _rerank_command(spec, py, ckpt, search_dir, rerank_dir, budget, _finetune_sets(spec, all_s, all_t, out))
        if (rerank_dir / "reranked.json").exists():
            _check_reused_rerank(rerank_dir / "reranked.json", cmd)
        else:
            _run(cmd, log)
        reranked = Arch.parse(json.loads((rerank_dir / "reranked.json").read_text())["arch"], supernet)
        named = {k: a for k, a in archs.items() if k.startswith("named ")}  # the search's rows first, then named
        archs = {**{k: a for k, a in archs.items() if k not in named}, "ENS reranked": reranked, **named}
    for label, arch in archs.items():
        if label != "all-T":
            finetune(label, arch)
    archs = {label: arch for label, arch in archs.items() if label not in diverged}
    # 5. evaluation, 6. export and end-to-end latency, 7. the table
    from latency_lut import LUT
    from supernet.data import build_datasets
    from supernet.evaluation import evaluate, input_quality

    _, val = build_datasets(cfg.data, cfg.task, cfg.seed)
    degraded = input_quality(val, cfg.task)
    lut_obj = LUT.load(lut)
    rows, models = [], {}
    for label, arch in archs.items():
        sub_dir = out / f"subnet-{arch}"
        model, _ = load_model(sub_dir / "subnet.pt")
        res = evaluate(model, val, cfg.task, csv_path=sub_dir / "eval.csv")
        models[str(arch)] = model
        rows.append({"label": label, "arch": str(arch), "psnr": res["psnr"], "ssim": res["ssim"],
                     "params_M": sum(p.numel() for p in model.parameters()) / 1e6,
                     "predicted_ms": lut_obj.predict(arch, spec.resolution, spec.resolution)})
    measured = measure_latency(models, spec.resolution, spec.threads, spec.latency_repeats, out / "onnx",
                               channels=cfg.model.inp_channels, rounds=spec.latency_rounds)
    base = measured[str(all_t)]
    for r in rows:
        r["measured_ms"] = measured[r["arch"]]
        r["speedup_vs_all_T"] = base / r["measured_ms"]
        r["onnx"] = str(out / "onnx" / f"{r['arch']}.onnx")
    t_parts = lut_obj.breakdown(all_t, spec.resolution, spec.resolution)
    s_parts = lut_obj.breakdown(all_s, spec.resolution, spec.resolution)
    summary_parts = {"fixed_ms": t_parts["fixed"], "transformer_blocks_ms": t_parts["transformer"],
                     "ssm_blocks_ms": s_parts["ssm"]}
    summary = {"config": spec.config, "task": cfg.task, "resolution": spec.resolution, "threads": spec.threads,
               "finetune_steps": spec.finetune_steps, "finetune_seed": spec.finetune_seed, "rows": rows,
               "diverged": diverged,
               "finetune_distill": {"weight": spec.finetune_distill, "teacher": spec.finetune_teacher,
                                    "feature_weight": spec.finetune_feature_distill},
               "input": {"psnr": degraded["psnr"], "ssim": degraded["ssim"], "n": degraded["n"]},
               "pareto_png": str(search_dir / "pareto.png"), "lut": str(lut),
               "fidelity": {k: v for k, v in (lut_obj.fidelity or {}).items() if k in ("mape", "spearman", "n", "fit")},
               "lut_breakdown": summary_parts, "minutes": round((time.time() - t_start) / 60, 1)}
    (out / "summary.json").write_text(json.dumps(summary, indent=2) + "\n")
    table = format_table(summary)
    (out / "summary.md").write_text(table + "\n")
    print("\n" + table)
    return summary


def _seed_note(summary: dict) -> str:
    seed = summary.get("finetune_seed")  # summaries written before the option existed have none
    return "" if seed is None else f" (batches drawn with seed {seed}, not the supernet's)"


def _distill_note(summary: dict) -> str:
    kd = summary.get("finetune_distill") or {}
    if not kd.get("weight") and not kd.get("feature_weight"):
        return ""
    teacher = "the fine-tuned all-T" if kd.get("teacher") == "all-t" else "the supernet's all-T path"
    what = [f"output ({kd['weight']:g} x L1)"] if kd.get("weight") else []
    if kd.get("feature_weight"):
        what.append(f"stage features ({kd['feature_weight']:g} x distance)")
    return f"; every arch but all-T also distils {teacher}'s {' and '.join(what)}"


def _chosen_row(rows: list[dict]) -> dict:
    """The last row the search chose (the table's last row when none is left: it diverged, say)."""
    return next((r for r in reversed(rows) if r["label"].startswith("ENS")), rows[-1])


DIVERGED_CELL = "fine-tuning diverged, left out: "
TABLE_HEADER = "| | arch | params (M) | PSNR (dB) | dPSNR vs all-T | SSIM | predicted ms | measured ms | speed-up |"


def parse_table(text: str) -> list[dict]:
    """The rows of the last table ``format_table`` wrote in ``text`` (a run's printed output), for tools that compare
    runs from their stored outputs: label, arch, psnr, dpsnr, ssim, measured_ms, speedup, or, for an arch whose
    fine-tuning diverged, label, arch and diverged (the message). Raises ValueError when there is no such table."""
    lines = text.splitlines()
    starts = [i for i, line in enumerate(lines) if line.strip() == TABLE_HEADER]
    if not starts:
        raise ValueError("no pipeline table (its header row) in the text")
    rows = []
    for line in lines[starts[-1] + 2:]:
        if not line.startswith("| "):
            break
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        label, arch = cells[0], cells[1].strip("`")
        if cells[2].startswith(DIVERGED_CELL):  # the message may hold "|" (older runs kept a progress bar in it)
            message = re.sub(r"[\s|]+$", "", line.split(DIVERGED_CELL, 1)[1])
            rows.append({"label": label, "arch": arch, "diverged": _diverged_message(message)})
        elif arch:  # the degraded-input row has no arch
            rows.append({"label": label, "arch": arch, "psnr": float(cells[3]), "dpsnr": float(cells[4]),
                         "ssim": float(cells[5]), "measured_ms": float(cells[7]),
                         "speedup": float(cells[8].rstrip("x"))})
    return rows


def format_table(summary: dict) -> str:
    r0 = next(r for r in summary["rows"] if r["label"] == "all-T")
    lines = [f"ENS {summary['task']} ({summary['config']}), latency at {summary['resolution']}x{summary['resolution']}"
             f" on this CPU ({summary['threads']} threads, onnxruntime, median); every arch fine-tuned "
             f"{summary['finetune_steps']} steps from the supernet{_seed_note(summary)}{_distill_note(summary)}",
             "",
             TABLE_HEADER,
             "|---|---|---|---|---|---|---|---|---|"]
    for r in summary["rows"]:
        lines.append(f"| {r['label']} | `{r['arch']}` | {r['params_M']:.2f} | {r['psnr']:.2f} | "
                     f"{r['psnr'] - r0['psnr']:+.2f} | {r['ssim']:.4f} | {r['predicted_ms']:.1f} | "
                     f"{r['measured_ms']:.1f} | {r['speedup_vs_all_T']:.2f}x |")
    degraded = summary.get("input")
    if degraded:  # summaries written before the row existed have none
        gain = r0["psnr"] - degraded["psnr"]
        lines.append(f"| degraded input | | | {degraded['psnr']:.2f} | {-gain:+.2f} | {degraded['ssim']:.4f} | | | |")
        if gain < MIN_RESTORATION_GAIN_DB:
            lines += ["", f"WARNING: all-T restores only {gain:+.2f} dB over its degraded input (validation set, "
                          f"{degraded['n']} items): the task is not learnt at this budget, so the PSNR gaps between "
                          f"archs above measure next to nothing."]
    for label, d in (summary.get("diverged") or {}).items():
        lines.append(f"| {label} | `{d['arch']}` | {DIVERGED_CELL}{d['message']} | | | | | | |")
    fid = summary.get("fidelity") or {}
    if fid:
        rho = fid.get("spearman")
        fit = f" (fitted to them; leave-one-out MAPE {fid['fit']['loo_mape']:.2f}%)" if fid.get("fit") else ""
        lines += ["", f"LUT fidelity: MAPE {fid.get('mape', float('nan')):.2f}%, Spearman "
                      f"{'n/a' if rho is None else f'{rho:.3f}'} over {fid.get('n')} whole networks{fit}"]
    parts = summary.get("lut_breakdown")
    if parts:
        f, t, s = parts["fixed_ms"], parts["transformer_blocks_ms"], parts["ssm_blocks_ms"]
        lines += ["", f"Where the time goes (LUT, uncalibrated): fixed parts {f:.1f} ms ({100 * f / (f + t):.0f}% of "
                      f"all-T), transformer blocks {t:.1f} ms, SSM blocks {s:.1f} ms: blocks alone {t / s:.2f}x, "
                      f"whole network at most {(f + t) / (f + s):.2f}x"]
    lines += ["", f"Pareto plot: {summary['pareto_png']}",
              f"ONNX of the chosen arch: {_chosen_row(summary['rows'])['onnx']}",
              f"total {summary['minutes']} min"]
    return "\n".join(lines)
