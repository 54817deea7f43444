"""Load a script of ``benchmarks/`` (not a package) as a module, for the tests of its helpers and CLI."""
import importlib.util
from pathlib import Path
from types import ModuleType

ROOT = Path(__file__).resolve().parents[1]


def load_benchmark(name: str) -> ModuleType:
    """``benchmarks/<name>.py`` as a fresh module (each call re-executes it, so monkeypatches do not leak)."""
    spec = importlib.util.spec_from_file_location(f"{name}_cli", ROOT / "benchmarks" / f"{name}.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod
