"""benchmarks/report.py: what the README shows of a recorded output."""
from benchmark_scripts import load_benchmark


def _report():
    return load_benchmark("report")


def test_readme_tail_drops_progress_and_periodic_training_lines_but_keeps_results():
    report = _report()
    output = "\n".join([
        "Pareto front (2 archs)",
        "  0  SSSSSSSS  29.96  149.8  knee",
        "subnet:  50%|#####     | 200/400 [00:10<00:10]\r[subnet] step 200/400 loss 0.02 lr 5e-4 20.0 img/s",
        *[f"[subnet] step {s}/400 loss 0.02 lr 1e-4 20.0 img/s" for s in range(50, 401, 50)],
        "[subnet] step 400 val SSSSSSSS: 30.21 dB / 0.7895",
        "| all-S | `SSSSSSSS` | 30.21 |",
    ])
    tail = report.readme_tail(output).splitlines()
    assert tail == ["Pareto front (2 archs)", "  0  SSSSSSSS  29.96  149.8  knee",
                    "[subnet] step 400 val SSSSSSSS: 30.21 dB / 0.7895", "| all-S | `SSSSSSSS` | 30.21 |"]
    # BENCHMARKS.md keeps the training log: only the README's excerpt leaves it out
    assert "[subnet] step 350/400 loss 0.02 lr 1e-4 20.0 img/s" in report.clean(output)


def test_readme_tail_keeps_the_last_lines():
    report = _report()
    output = "\n".join(f"line {i}" for i in range(100))
    tail = report.readme_tail(output).splitlines()
    assert len(tail) == report.README_LINES and tail[-1] == "line 99"
