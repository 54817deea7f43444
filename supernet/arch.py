"""Arch: the chosen op for every slot of the hybrid U-Net, as a small frozen value.

An Arch is one letter per gene, ``T`` (transformer) or ``S`` (ssm), in the fixed slot order
enc1, enc2, enc3, latent, dec3, dec2, dec1, refinement. With ``stage`` granularity there is one gene per
stage (``"TTSSTTSS"``); with ``block`` granularity one gene per block, stages joined by ``-``
(``"TTTT-TTTTTT-...-TTTT"``). The canonical string is the cache key, file-name part and log tag everywhere.
"""
from __future__ import annotations

import json
import random
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable

STAGES: tuple[str, ...] = ("enc1", "enc2", "enc3", "latent", "dec3", "dec2", "dec1", "refinement")
LETTER_TO_OP: dict[str, str] = {"T": "transformer", "S": "ssm"}
OP_TO_LETTER: dict[str, str] = {op: letter for letter, op in LETTER_TO_OP.items()}
GRANULARITIES: tuple[str, ...] = ("stage", "block")


def stage_sizes_from(source: Any) -> tuple[int, ...]:
    """Blocks per stage from a network (``.stage_sizes``) or a sequence of 8 ints."""
    sizes = getattr(source, "stage_sizes", source)
    sizes = tuple(int(n) for n in sizes)
    if len(sizes) != len(STAGES) or any(n < 1 for n in sizes):
        raise ValueError(f"stage sizes must be {len(STAGES)} positive ints ({', '.join(STAGES)}), got {sizes}")
    return sizes


@dataclass(frozen=True)
class Arch:
    """Op letters per stage: one letter each (``stage``) or one per block (``block``)."""

    granularity: str
    stages: tuple[str, ...]

    def __post_init__(self) -> None:
        if self.granularity not in GRANULARITIES:
            raise ValueError(f"granularity must be one of {GRANULARITIES}, got {self.granularity!r}")
        if len(self.stages) != len(STAGES):
            raise ValueError(f"an arch has {len(STAGES)} stages ({', '.join(STAGES)}), got {len(self.stages)}")
        for name, genes in zip(STAGES, self.stages):
            bad = sorted(set(genes) - set(LETTER_TO_OP))
            if bad or not genes:
                raise ValueError(f"stage {name}: genes {genes!r} must be letters from {sorted(LETTER_TO_OP)}")
            if self.granularity == "stage" and len(genes) != 1:
                raise ValueError(f"stage granularity takes one gene per stage; stage {name} has {genes!r}")

    # ---- construction -------------------------------------------------------------------------------
    @classmethod
    def parse(cls, text: str, stage_sizes: Any | None = None) -> "Arch":
        """Parse a canonical string. ``stage_sizes`` (a net or 8 ints), when given, is checked against it."""
        text = text.strip()
        if "-" in text:
            arch = cls("block", tuple(text.split("-")))
        elif len(text) == len(STAGES):
            arch = cls("stage", tuple(text))
        else:
            raise ValueError(
                f"arch string {text!r}: expected {len(STAGES)} letters T/S (stage granularity) or "
                f"{len(STAGES)} groups of T/S joined by '-' (block granularity)")
        if stage_sizes is not None:
            arch.check(stage_sizes)
        return arch

    @classmethod
    def uniform(cls, net_or_sizes: Any, letter: str, granularity: str = "stage") -> "Arch":
        """The same op everywhere: ``Arch.uniform(net, "T")`` is the all-transformer path (Restormer)."""
        if letter not in LETTER_TO_OP:
            raise ValueError(f"op letter must be one of {sorted(LETTER_TO_OP)}, got {letter!r}")
        sizes = stage_sizes_from(net_or_sizes)
        if granularity == "stage":
            return cls("stage", tuple(letter for _ in sizes))
        return cls(granularity, tuple(letter * n for n in sizes))

    @classmethod
    def random(cls, net_or_sizes: Any, rng: random.Random | int | None = None, granularity: str = "stage",
               p_transformer: float = 0.5) -> "Arch":
        """Seeded sampler: each gene is ``T`` with probability ``p_transformer``."""
        rng = rng if isinstance(rng, random.Random) else random.Random(rng)
        sizes = stage_sizes_from(net_or_sizes)
        counts = [1] * len(sizes) if granularity == "stage" else list(sizes)
        pick = lambda: "T" if rng.random() < p_transformer else "S"  # noqa: E731
        return cls(granularity, tuple("".join(pick() for _ in range(n)) for n in counts))

    @classmethod
    def from_genome(cls, genome: Iterable[int], net_or_sizes: Any, granularity: str = "stage") -> "Arch":
        """Inverse of :meth:`genome`: 1 = transformer, 0 = ssm."""
        bits = [int(round(float(g))) for g in genome]
        sizes = stage_sizes_from(net_or_sizes)
        counts = [1] * len(sizes) if granularity == "stage" else list(sizes)
        if len(bits) != sum(counts) or any(b not in (0, 1) for b in bits):
            raise ValueError(f"genome for {granularity} granularity needs {sum(counts)} genes of 0/1, got {bits}")
        stages, i = [], 0
        for n in counts:
            stages.append("".join("T" if b else "S" for b in bits[i:i + n]))
            i += n
        return cls(granularity, tuple(stages))

    @classmethod
    def from_json(cls, data: dict | str) -> "Arch":
        if isinstance(data, str):
            data = json.loads(data)
        if "arch" not in data:
            raise ValueError(f"arch JSON needs an 'arch' key with the canonical string, got keys {sorted(data)}")
        arch = cls.parse(data["arch"])
        if "granularity" in data and data["granularity"] != arch.granularity:
            raise ValueError(f"arch JSON: granularity {data['granularity']!r} does not match {data['arch']!r}")
        return arch

    @classmethod
    def load(cls, path_or_text: str | Path) -> "Arch":
        """An arch from a canonical string, an ``arch.json`` file, or a ``chosen.json`` (its ``knee`` entry)."""
        p = Path(str(path_or_text))
        if p.suffix == ".json" or p.is_file():
            if not p.is_file():
                raise FileNotFoundError(f"arch file {p} does not exist")
            try:
                data = json.loads(p.read_text())
            except json.JSONDecodeError as e:
                raise ValueError(f"arch file {p} is not valid JSON: {e}") from e
            if isinstance(data, dict) and "arch" not in data:
                for key in ("knee", "best_under_budget", "chosen"):
                    if isinstance(data.get(key), dict) and "arch" in data[key]:
                        return cls.from_json(data[key])
            try:
                return cls.from_json(data)
            except ValueError as e:
                raise ValueError(f"arch file {p}: {e}") from e
        return cls.parse(str(path_or_text))

    # ---- views -------------------------------------------------------------------------------------
    def __str__(self) -> str:
        return "".join(self.stages) if self.granularity == "stage" else "-".join(self.stages)

    @property
    def key(self) -> str:
        return str(self)

    def to_json(self) -> dict:
        return {"arch": str(self), "granularity": self.granularity}

    def save(self, path: str | Path, **extra: Any) -> None:
        Path(path).write_text(json.dumps({**self.to_json(), **extra}, indent=2) + "\n")

    def genome(self) -> list[int]:
        return [1 if c == "T" else 0 for genes in self.stages for c in genes]

    def check(self, net_or_sizes: Any) -> None:
        """Raise if this arch does not fit a network with the given blocks per stage."""
        sizes = stage_sizes_from(net_or_sizes)
        if self.granularity == "block":
            got = tuple(len(g) for g in self.stages)
            if got != sizes:
                raise ValueError(f"arch {self}: genes per stage {got} do not match the network's blocks per stage "
                                 f"{sizes} ({', '.join(STAGES)})")

    def block_ops(self, net_or_sizes: Any) -> list[list[str]]:
        """Op name (``transformer``/``ssm``) for every block, per stage."""
        sizes = stage_sizes_from(net_or_sizes)
        self.check(sizes)
        if self.granularity == "stage":
            return [[LETTER_TO_OP[g]] * n for g, n in zip(self.stages, sizes)]
        return [[LETTER_TO_OP[c] for c in genes] for genes in self.stages]

    def to_block(self, net_or_sizes: Any) -> "Arch":
        """The same path written with one gene per block."""
        ops = self.block_ops(net_or_sizes)
        return Arch("block", tuple("".join(OP_TO_LETTER[o] for o in stage) for stage in ops))

    def count(self, letter: str, net_or_sizes: Any | None = None) -> int:
        """Number of genes (or blocks, when sizes are given) using op ``letter``."""
        if net_or_sizes is None:
            return sum(g.count(letter) for g in self.stages)
        return sum(o == LETTER_TO_OP[letter] for stage in self.block_ops(net_or_sizes) for o in stage)


def all_stage_archs() -> list[Arch]:
    """Every stage-granularity arch (2^8 = 256), in genome order."""
    n = len(STAGES)
    return [Arch.from_genome([(i >> (n - 1 - k)) & 1 for k in range(n)], [1] * n) for i in range(2 ** n)]


def slot_names(net_or_sizes: Any) -> list[str]:
    """Slot names ``<stage>.<index>`` in canonical order."""
    return [f"{s}.{i}" for s, n in zip(STAGES, stage_sizes_from(net_or_sizes)) for i in range(n)]


