"""Re-ranking the search's candidates by short fine-tunings (successive halving).

The supernet's score of an arch is its inherited quality; what a user gets is the arch after fine-tuning, and on the
proxies the two can disagree (docs/experiments.md, "Re-ranking by short fine-tunings"). This step takes every arch the
search scored whose predicted latency is within ``budget x (1 + slack)`` (the slack admits archs the LUT over-predicts),
fine-tunes each ``steps`` steps from the supernet (``train.py subnet``, the run's own distillation settings), keeps
the best ``1 / eta`` and fine-tunes those ``eta`` times longer, for ``rungs`` rungs; the best of the last rung is the
re-ranked choice. Every fine-tuning is its own folder, so a killed run resumes where it stopped; a folder
resumes only with the settings it was started with (``settings.json``), which ``reranked.json`` keeps too.

With ``min_speedup`` the candidates and all-T are first timed on this host (:mod:`search.measured_speedup`) and
only those measured at least ``min_speedup`` x faster than all-T are fine-tuned: near the budget edge the LUT's few
percent decide whether an arch is 2.9x or 3.1x, the measurement decides instead.

Selection uses the validation set the final table reports on, as the search itself does.
"""
from __future__ import annotations

import csv
import json
import math
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Sequence

from search.fileio import atomic_write_text
from search.measured_speedup import MEASURED_FILE, Measure, measured_speedups, onnx_measure, timing_of_lut

ROOT = Path(__file__).resolve().parents[1]
RESULT_FILE = "reranked.json"
SETTINGS_FILE = "settings.json"
# what decides which archs a re-ranking fine-tunes and what they reach: a folder is resumed, and a finished
# re-ranking reused, only with the same values
RESULT_KEYS = ("config", "steps", "eta", "rungs", "slack", "budget_ms", "max_candidates", "min_speedup", "overrides")


@dataclass
class RerankSettings:
    supernet: Path                       # the search's supernet.pt
    config: str                          # training config (fine-tuning settings, data)
    search_dir: Path                     # holds all_evaluated.csv and chosen.json
    out: Path
    steps: int = 100                     # fine-tuning steps of the first rung
    eta: int = 3                         # keep the best 1/eta of a rung; the next rung trains eta x longer
    rungs: int = 2
    slack: float = 0.1                   # candidates: predicted latency <= budget x (1 + slack)
    budget_ms: float | None = None       # default: chosen.json's budget
    max_candidates: int = 32
    min_speedup: float | None = None     # also: measured speed-up over all-T on this host >= this (None: off)
    overrides: Sequence[str] = field(default_factory=list)  # --set KEY=VALUE for every fine-tuning
    progress: bool = True

    def __post_init__(self) -> None:
        for key, low in (("steps", 1), ("eta", 2), ("rungs", 1), ("max_candidates", 1)):
            if getattr(self, key) < low:
                raise ValueError(f"{key}: expected >= {low}, got {getattr(self, key)}")
        if not self.slack >= 0:
            raise ValueError(f"slack: expected >= 0, got {self.slack}")
        if self.min_speedup is not None and not self.min_speedup > 0:
            raise ValueError(f"min_speedup: expected > 0, got {self.min_speedup}")


def settings_record(settings: RerankSettings) -> dict[str, Any]:
    """The :data:`RESULT_KEYS` of ``settings`` as JSON values (what ``settings.json`` and ``reranked.json`` keep)."""
    return {k: list(settings.overrides) if k == "overrides" else getattr(settings, k) for k in RESULT_KEYS}


def _same_file(a: Any, b: Any) -> bool:
    """``a == b``, or two spellings of one existing file (``configs/x.yaml`` and ``./configs/x.yaml``)."""
    if a == b:
        return True
    try:
        return isinstance(a, str) and isinstance(b, str) and Path(a).is_file() and Path(a).samefile(b)
    except OSError:
        return False


def _same_setting(key: str, stored: Any, wanted: Any) -> bool:
    if key == "config":
        return _same_file(stored, wanted)
    if key == "overrides" and isinstance(stored, list) and len(stored) == len(wanted):
        # KEY=VALUE each; a value may be a path (subnet.teacher=...)
        pairs = [(str(s).partition("="), str(w).partition("=")) for s, w in zip(stored, wanted)]
        return all(s[0] == w[0] and _same_file(s[2], w[2]) for s, w in pairs)
    return stored == wanted


def settings_mismatch(stored: dict[str, Any], settings: RerankSettings) -> str | None:
    """None when ``stored`` (a :func:`settings_record`) matches ``settings``; else the differing keys, stored and
    wanted, in words. A config or ``--set`` path spelt another way that names the same file matches."""
    wanted = settings_record(settings)
    differ = [k for k in RESULT_KEYS if not _same_setting(k, stored.get(k), wanted[k])]
    if not differ:
        return None
    return "; ".join(f"{k} {stored.get(k)!r} there, {wanted[k]!r} now" for k in differ)


def check_resumable(settings: RerankSettings) -> None:
    """Refuse a folder whose fine-tunings ran with other settings (``<out>/settings.json``): they are read back, not
    trained again, and would be ranked as if trained with these."""
    path = Path(settings.out) / SETTINGS_FILE
    if not path.is_file():
        return
    try:
        stored = json.loads(path.read_text())
    except ValueError as e:
        raise ValueError(f"{path} is not JSON ({e}); delete {path.parent} to re-rank again") from None
    differ = settings_mismatch(stored, settings)
    if differ:
        raise ValueError(f"{path}: this folder was re-ranked with other settings ({differ}); give another --out or "
                         f"delete {path.parent} to re-rank with these")


def record_settings(settings: RerankSettings) -> None:
    """Write ``<out>/settings.json`` before the first fine-tuning (a folder from before it was kept: a note)."""
    out = Path(settings.out)
    if (out / SETTINGS_FILE).is_file():
        return
    if settings.progress and any(out.glob("rung*")):
        print(f"note: {out} has fine-tunings but no {SETTINGS_FILE} (made before it was kept); resuming unchecked",
              flush=True)
    out.mkdir(parents=True, exist_ok=True)
    atomic_write_text(out / SETTINGS_FILE, json.dumps(settings_record(settings), indent=2) + "\n")


def read_evaluated(search_dir: Path) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    """The search's evaluated records (arch, psnr, latency_ms) and its chosen.json; errors name the file."""
    csv_path, chosen_path = search_dir / "all_evaluated.csv", search_dir / "chosen.json"
    for p in (csv_path, chosen_path):
        if not p.is_file():
            raise FileNotFoundError(f"{p}: missing (expected a finished search.py output folder)")
    try:
        chosen = json.loads(chosen_path.read_text())
    except ValueError as e:
        raise ValueError(f"{chosen_path}: not JSON ({e})") from None
    if chosen.get("cost") != "latency_ms":
        raise ValueError(f"{chosen_path}: the search ran without a LUT (cost {chosen.get('cost')!r}); re-ranking "
                         f"needs predicted latencies (search.py --lut)")
    with open(csv_path, newline="") as f:
        rows = list(csv.DictReader(f))
    missing = {"arch", "psnr", "latency_ms"} - set(rows[0] if rows else {})
    if missing:
        raise ValueError(f"{csv_path}: no rows or missing columns {sorted(missing)}")
    try:
        records = [{"arch": r["arch"], "psnr": float(r["psnr"]), "latency_ms": float(r["latency_ms"])} for r in rows]
    except (TypeError, ValueError) as e:
        raise ValueError(f"{csv_path}: psnr and latency_ms must be numbers ({e})") from None
    return records, chosen


def candidate_pool(records: Sequence[dict[str, Any]], budget_ms: float, slack: float,
                   max_candidates: int) -> list[dict[str, Any]]:
    """Records within ``budget x (1 + slack)``, best supernet score first, at most ``max_candidates``."""
    limit = budget_ms * (1 + slack)
    pool = sorted((r for r in records if r["latency_ms"] <= limit), key=lambda r: (-r["psnr"], r["latency_ms"]))
    return pool[:max_candidates]


def rung_plan(n: int, steps: int, eta: int, rungs: int) -> list[tuple[int, int]]:
    """[(candidates, steps)] per rung: n, ceil(n / eta), ... candidates at steps, eta x steps, ...; stops after the
    rung that has a single candidate left."""
    plan = []
    for r in range(rungs):
        plan.append((n, steps * eta ** r))
        if n == 1:
            break
        n = math.ceil(n / eta)
    return plan


FineTune = Callable[[str, int, Path], "float | None"]  # (arch, steps, folder) -> validation PSNR (None: diverged)


def train_py_finetune(settings: RerankSettings, log: Path) -> FineTune:
    """A fine-tuning by ``train.py subnet`` in a child process (output appended to ``log``); a finished folder is
    read back instead of trained again, a killed one resumed."""
    from supernet.pipeline import DIVERGED_MARKER
    from supernet.training.cli import DIVERGED_EXIT

    def run(arch: str, steps: int, folder: Path) -> float | None:
        done = _finished_psnr(folder, arch)
        if done is not None:
            return done
        if (folder / DIVERGED_MARKER).exists():
            return None
        cmd = [sys.executable, "train.py", "subnet", "--arch", arch, "--from", str(settings.supernet),
               "--config", settings.config, "--steps", str(steps), "--out", str(folder),
               *[a for kv in settings.overrides for a in ("--set", kv)]]
        if (folder / "checkpoints" / "last.pt").exists():
            cmd.append("--resume")
        log.parent.mkdir(parents=True, exist_ok=True)
        with open(log, "a") as f:
            f.write(f"\n$ {' '.join(cmd)}\n")
            f.flush()
            rc = subprocess.run(cmd, cwd=ROOT, stdout=f, stderr=subprocess.STDOUT).returncode
        if rc == DIVERGED_EXIT:
            folder.mkdir(parents=True, exist_ok=True)
            (folder / DIVERGED_MARKER).write_text(f"fine-tuning diverged (exit {rc}); see {log}\n")
            return None
        if rc != 0:
            raise RuntimeError(f"re-ranking: fine-tuning {arch} failed (exit {rc}): {' '.join(cmd)}; log: {log}")
        psnr = _finished_psnr(folder, arch)
        if psnr is None:
            raise RuntimeError(f"re-ranking: {folder}/metrics.json has no fine-tuned PSNR for {arch}")
        return psnr

    return run


def _finished_psnr(folder: Path, arch: str) -> float | None:
    metrics = folder / "metrics.json"
    if not (folder / "subnet.pt").is_file() or not metrics.is_file():
        return None
    r = (json.loads(metrics.read_text()).get("subnet") or {}).get(arch)
    return float(r["psnr"]) if r and "psnr" in r else None


def measured_pool(pool: list[dict[str, Any]], settings: RerankSettings, chosen: dict[str, Any],
                  measure: Measure | None = None) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    """The pool's archs measured at least ``settings.min_speedup`` x faster than all-T (each record gains
    ``measured_ms`` and ``speedup``, best supernet score first, at most ``max_candidates``), and the measurement."""
    chosen_path = settings.search_dir / "chosen.json"
    resolution = chosen.get("resolution")
    if not resolution:
        raise ValueError(f"{chosen_path}: no 'resolution' (the search's input size), which --min-speedup times at")
    if not chosen.get("lut"):
        raise ValueError(f"{chosen_path}: no 'lut' (the LUT whose timing options --min-speedup reuses)")
    timing = {"resolution": int(resolution), **timing_of_lut(chosen["lut"])}
    all_t = pool[0]["arch"].replace("S", "T")  # every gene a transformer, either granularity
    if measure is None:
        measure = onnx_measure(settings.supernet, **timing)
    measured = measured_speedups([r["arch"] for r in pool], all_t, Path(settings.out), measure, timing)
    speedup = measured["speedup"]
    kept = [{**r, "measured_ms": measured["ms"][r["arch"]], "speedup": speedup[r["arch"]]} for r in pool
            if speedup[r["arch"]] >= settings.min_speedup]
    where = Path(settings.out) / MEASURED_FILE
    if settings.progress:
        print(f"measured on this host ({timing['threads']} threads, {timing['rounds']} rounds x {timing['repeats']} "
              f"runs; {where}): {len(kept)} of {len(pool)} candidates >= {settings.min_speedup:g}x faster than "
              f"all-T", flush=True)
    if not kept:
        best = max(pool, key=lambda r: speedup[r["arch"]])["arch"]
        raise ValueError(f"no candidate measured >= {settings.min_speedup:g}x faster than all-T on this host (the "
                         f"fastest, {best}, {speedup[best]:.2f}x; see {where}); lower --min-speedup or raise --slack")
    return kept[:settings.max_candidates], measured


def run_rerank(settings: RerankSettings, finetune: FineTune | None = None,
               measure: Measure | None = None) -> dict[str, Any]:
    """Successive halving over the candidate pool; writes and returns ``<out>/reranked.json``. ``measure`` replaces
    the host timing of ``min_speedup`` (tests)."""
    records, chosen = read_evaluated(settings.search_dir)
    budget = settings.budget_ms if settings.budget_ms is not None else chosen.get("budget")
    if budget is None:
        raise ValueError(f"{settings.search_dir / 'chosen.json'}: the search had no latency budget; give one "
                         f"(--budget-ms)")
    # with a measured floor every arch within the slack is timed, and the cap applies to those that pass
    cap = settings.max_candidates if settings.min_speedup is None else len(records)
    pool = candidate_pool(records, budget, settings.slack, cap)
    if not pool:
        raise ValueError(f"no arch the search scored is predicted within {budget:.1f} ms x {1 + settings.slack:g}; "
                         f"raise --slack or the budget")
    check_resumable(settings)
    measured = None
    if settings.min_speedup is not None:
        pool, measured = measured_pool(pool, settings, chosen, measure)
    out = Path(settings.out)
    finetune = finetune or train_py_finetune(settings, out / "rerank.log")
    supernet_psnr = {r["arch"]: r["psnr"] for r in pool}
    latency = {r["arch"]: r["latency_ms"] for r in pool}
    speedup = {r["arch"]: r["speedup"] for r in pool if "speedup" in r}
    survivors = [r["arch"] for r in pool]
    rungs = []
    plan = rung_plan(len(survivors), settings.steps, settings.eta, settings.rungs)
    floor = "" if measured is None else f", measured >= {settings.min_speedup:g}x faster than all-T"
    record_settings(settings)
    print(f"re-ranking {len(survivors)} archs within {budget:.1f} ms x {1 + settings.slack:g}{floor}: "
          + ", ".join(f"{n} x {s} steps" for n, s in plan), flush=True)
    for r, (n, steps) in enumerate(plan):
        survivors = survivors[:n]
        results = []
        for i, arch in enumerate(survivors):
            psnr = finetune(arch, steps, out / f"rung{r}-{steps}steps" / f"subnet-{arch}")
            results.append({"arch": arch, "psnr": psnr, "supernet_psnr": supernet_psnr[arch],
                            "latency_ms": latency[arch], **({"speedup": speedup[arch]} if speedup else {})})
            if settings.progress:
                shown = "diverged" if psnr is None else f"{psnr:.2f} dB"
                fast = f", measured {speedup[arch]:.2f}x" if speedup else ""
                print(f"  rung {r} ({steps} steps) {i + 1}/{len(survivors)}: {arch} {shown} (supernet "
                      f"{supernet_psnr[arch]:.2f} dB, {latency[arch]:.1f} ms{fast})", flush=True)
        # best first; a diverged fine-tuning ranks last; ties keep the supernet's order
        results.sort(key=lambda x: math.inf if x["psnr"] is None else -x["psnr"])
        rungs.append({"steps": steps, "results": results})
        survivors = [x["arch"] for x in results if x["psnr"] is not None]
        if not survivors:
            raise RuntimeError(f"re-ranking: every fine-tuning of rung {r} diverged; see {out / 'rerank.log'}")
    best = rungs[-1]["results"][0]
    summary = {"arch": best["arch"], "psnr": best["psnr"], "steps": rungs[-1]["steps"],
               "supernet_psnr": best["supernet_psnr"], "latency_ms": best["latency_ms"], "budget_ms": budget,
               "slack": settings.slack, "feasible": best["latency_ms"] <= budget, "candidates": len(pool),
               "rungs": rungs, "settings": settings_record(settings)}
    if measured is not None:
        summary.update(min_speedup=settings.min_speedup, speedup=best["speedup"], measured=measured)
    atomic_write_text(out / RESULT_FILE, json.dumps(summary, indent=2) + "\n")
    return summary


def format_rerank(summary: dict[str, Any]) -> str:
    """One line per arch of the last rung, and the choice."""
    last = summary["rungs"][-1]
    measured = "speedup" in summary
    head = f"| arch | fine-tuned PSNR ({last['steps']} steps) | supernet PSNR | predicted ms |"
    lines = [head + (" measured speed-up |" if measured else ""), "|---|---|---|---|" + ("---|" if measured else "")]
    for x in last["results"]:
        shown = "diverged" if x["psnr"] is None else f"{x['psnr']:.2f}"
        lines.append(f"| `{x['arch']}` | {shown} | {x['supernet_psnr']:.2f} | {x['latency_ms']:.1f} |"
                     + (f" {x['speedup']:.2f}x |" if measured else ""))
    within = "within the budget" if summary["feasible"] else f"over the budget {summary['budget_ms']:.1f} ms (slack)"
    if measured:
        within += f", measured {summary['speedup']:.2f}x faster than all-T (floor {summary['min_speedup']:g}x)"
    lines.append(f"re-ranked choice: {summary['arch']} ({summary['psnr']:.2f} dB after {summary['steps']} steps, "
                 f"{summary['latency_ms']:.1f} ms predicted, {within}; {summary['candidates']} candidates)")
    return "\n".join(lines)
