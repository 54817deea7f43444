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


def test_fill_blocks_writes_the_records_tail_and_leaves_unknown_blocks():
    report = _report()
    record = {"name": "demo", "command": "python demo.py", "date": "2026-12-07 10:00 UTC", "seconds": 1.5,
              "machine": "m", "output": "line 1\nline 2"}
    text = "a\n<!-- bench:demo -->\nold\n<!-- /bench -->\nb\n<!-- bench:gone -->\nkept\n<!-- /bench -->\n"
    filled = report.fill_blocks(text, {"demo": record})
    assert "`python demo.py` (2026-12-07 10:00 UTC, 1.5 s, m; full output in BENCHMARKS.md)" in filled
    assert "```\nline 1\nline 2\n```" in filled and "old" not in filled
    assert "<!-- bench:gone -->\nkept\n<!-- /bench -->" in filled


def test_every_rendered_block_names_a_stored_record():
    """A block whose name matches no benchmarks/results/*.json is never filled: a misspelt or lost record."""
    report = _report()
    stored = {p.stem for p in report.RESULTS.glob("*.json")}
    for doc in report.RENDERED_DOCS:
        names = report.BLOCK.findall((report.ROOT / doc).read_text())
        assert names, f"{doc} has no bench block"
        missing = sorted(set(names) - stored)
        assert not missing, f"{doc}: blocks with no record in benchmarks/results: {missing}"
