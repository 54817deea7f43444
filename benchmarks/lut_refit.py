#!/usr/bin/env python3
"""How well each LUT calibration predicts the whole networks a finished LUT timed: no new measurement.

  python benchmarks/lut_refit.py luts/host-256.json runs/reproduce/<run>/lut.json

For every LUT file (built with --fidelity-archs >= 5) it prints, over the networks timed for fidelity:
``plain`` (sum of block medians), ``as built`` (the calibration the LUT was built with, e.g. boundary_pairs),
``fit, in-sample`` (``build_lut.py --calibrate fit``: transformer and SSM block scales fitted to these networks,
then scored on them) and ``fit, leave-one-out`` (each network predicted by the scales fitted to the others: what
the fit can be expected to do on networks it has not seen). Columns: MAPE, max APE, Spearman, and the all-S
speed-up over all-T each predicts next to the measured one, the number a search's choice hangs on.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

from latency_lut.build import fidelity_summary
from latency_lut.fit import FIT_MIN, fit_scales, leave_one_out_predictions, predict_with
from latency_lut.lut import LUT, LUTError
from supernet.arch import Arch


def refit(lut: LUT, where: str) -> list[dict]:
    """Rows ``{method, mape, max_ape, spearman, speedup_pred, speedup_meas}`` for one finished LUT."""
    fid = lut.fidelity or {}
    nets = fid.get("archs") or []
    if not fid.get("complete") or len(nets) < FIT_MIN + 1:
        raise LUTError(f"{where}: needs a finished fidelity check with >= {FIT_MIN + 1} whole networks "
                       f"(build_lut.py --fidelity-archs 10), found {len(nets)}")
    hw = tuple(fid["resolution"])
    data = [{**lut.breakdown(r["arch"], *hw), "measured_ms": r["measured_ms"], "arch": r["arch"]} for r in nets]
    meas = np.array([d["measured_ms"] for d in data])
    scales = fit_scales(data)
    methods = {
        "plain": np.array([lut.predict(d["arch"], *hw, calibrated=False) for d in data]),
        f"as built ({(lut.calibration or {}).get('method', 'none')})": np.array([lut.predict(d["arch"], *hw)
                                                                                for d in data]),
        f"fit, in-sample (T x {scales['transformer']:.3f}, S x {scales['ssm']:.3f})":
            np.array([predict_with(scales, d) for d in data]),
        "fit, leave-one-out": np.array(leave_one_out_predictions(data)),
    }
    archs = [Arch.parse(d["arch"], lut.layout.sizes) for d in data]
    t = next((i for i, a in enumerate(archs) if a.count("S") == 0), None)  # all-T
    s = next((i for i, a in enumerate(archs) if a.count("T") == 0), None)  # all-S
    out = []
    for name, pred in methods.items():
        summary = fidelity_summary([{"predicted_ms": p, "measured_ms": m} for p, m in zip(pred, meas)])
        row = {"method": name, **{k: summary[k] for k in ("mape", "max_ape", "spearman")},
               "speedup_pred": None, "speedup_meas": None}
        if t is not None and s is not None:
            row.update(speedup_pred=float(pred[t] / pred[s]), speedup_meas=float(meas[t] / meas[s]))
        out.append(row)
    return out


def format_rows(path: str, lut: LUT, rows: list[dict]) -> str:
    fid = lut.fidelity
    lines = [f"{path}: {fid['n']} networks at {fid['resolution'][0]}x{fid['resolution'][1]}, "
             f"{lut.device.get('threads', '?')} thread(s)",
             f"  {'method':<48} {'MAPE':>7} {'max APE':>8} {'Spearman':>9} {'all-S speed-up':>15}"]
    for r in rows:
        rho = "n/a" if r["spearman"] is None else f"{r['spearman']:.3f}"
        sp = "" if r["speedup_pred"] is None else f"{r['speedup_pred']:.2f}x"
        lines.append(f"  {r['method']:<48} {r['mape']:6.2f}% {r['max_ape']:7.2f}% {rho:>9} {sp:>15}")
    if rows and rows[0]["speedup_meas"] is not None:
        lines.append(f"  {'measured':<48} {'':>7} {'':>8} {'':>9} {rows[0]['speedup_meas']:14.2f}x")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("luts", nargs="+", help="finished LUT JSON files")
    a = ap.parse_args(argv)
    for i, path in enumerate(a.luts):
        if not Path(path).is_file():
            ap.error(f"LUT file {path} does not exist")
        try:
            lut = LUT.load(path)
            rows = refit(lut, path)
        except (LUTError, ValueError) as e:
            print(f"error: {e}", file=sys.stderr)
            return 2
        print(("\n" if i else "") + format_rows(path, lut, rows))
    return 0


if __name__ == "__main__":
    sys.exit(main())
