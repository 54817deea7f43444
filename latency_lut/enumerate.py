"""Which LUT entries a network needs: every distinct block and fixed part, with its input shapes.

Works from the model config alone (no network is built), so ``LUT.predict`` stays cheap enough for a search's
inner loop. The layout (channels, heads and scale per stage) is the supernet's own ``STAGE_LAYOUT``.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Sequence

from supernet.arch import STAGES, Arch
from supernet.unet import PAD_MULTIPLE, STAGE_LAYOUT

from latency_lut.keys import BLOCK_PARAMS, block_key, fixed_key

Shape = tuple[int, ...]


@dataclass(frozen=True)
class Entry:
    """One thing to measure: its key, what it is (``op``; ``stage`` for blocks, ``part`` for fixed parts such as
    ``down1_2``), and its input shapes (batch 1)."""

    key: str
    op: str
    input_shapes: tuple[Shape, ...]
    stage: str | None = None
    part: str | None = None

    @property
    def is_block(self) -> bool:
        return self.stage is not None


def parse_resolution(text: str | int | Sequence[int]) -> tuple[int, int]:
    """``256`` -> (256, 256); ``512x768`` -> (512, 768) (H x W)."""
    if isinstance(text, (list, tuple)):
        dims = [int(d) for d in text]
    else:
        try:
            dims = [int(d) for d in str(text).lower().split("x")]
        except ValueError:
            raise ValueError(f"--resolution {text!r}: expected N or HxW, e.g. 256 or 512x768") from None
    if len(dims) == 1:
        dims = dims * 2
    if len(dims) != 2 or min(dims) < 1:
        raise ValueError(f"--resolution {text!r}: expected N or HxW with positive sizes")
    return dims[0], dims[1]


def padded(hw: tuple[int, int]) -> tuple[int, int]:
    """The size the network really computes at (padded up to a multiple of 8)."""
    return tuple(-(-d // PAD_MULTIPLE) * PAD_MULTIPLE for d in hw)  # type: ignore[return-value]


@dataclass(frozen=True)
class Layout:
    """Per-stage blocks, channels, heads and scale of a model config."""

    cfg: dict[str, Any]
    sizes: tuple[int, ...]
    dims: tuple[int, ...]
    heads: tuple[int, ...]
    scales: tuple[int, ...]

    @classmethod
    def from_config(cls, cfg: dict[str, Any]) -> "Layout":
        if cfg.get("dual_pixel_task"):
            raise ValueError("model config: dual_pixel_task=True is not covered by the latency LUT's fixed parts")
        dim = int(cfg.get("dim", 48))
        nb = list(cfg.get("num_blocks", [4, 6, 6, 8]))
        heads = list(cfg.get("heads", [1, 2, 4, 8]))
        if len(nb) != 4 or len(heads) != 4:
            raise ValueError(f"model config: num_blocks and heads need 4 entries, got {nb} and {heads}")
        sizes = (nb[0], nb[1], nb[2], nb[3], nb[2], nb[1], nb[0], int(cfg.get("num_refinement_blocks", 4)))
        return cls(dict(cfg), sizes, tuple(STAGE_LAYOUT[s][0] * dim for s in STAGES),
                   tuple(heads[STAGE_LAYOUT[s][1]] for s in STAGES), tuple(STAGE_LAYOUT[s][2] for s in STAGES))

    def block_entry(self, stage_idx: int, op: str, hw: tuple[int, int], dtype: str, runtime: str) -> Entry:
        h, w = padded(hw)
        s = self.scales[stage_idx]
        shw = (h // s, w // s)
        c = self.dims[stage_idx]
        key = block_key(op, self.cfg, c, self.heads[stage_idx], shw, dtype, runtime, STAGES[stage_idx])
        return Entry(key, op, ((1, c, *shw),), stage=STAGES[stage_idx])

    def fixed_entries(self, hw: tuple[int, int], dtype: str, runtime: str) -> list[Entry]:
        """Patch embedding, 3 down- and 3 upsamplers, 2 reductions (concat + 1x1), the level-1 concat, output."""
        h, w = padded(hw)
        c, cin, cout = int(self.cfg.get("dim", 48)), int(self.cfg.get("inp_channels", 3)), int(
            self.cfg.get("out_channels", 3))
        bias = f"bias{int(bool(self.cfg.get('bias', False)))}"
        at = lambda s: (h // s, w // s)  # noqa: E731
        out = [Entry(fixed_key("patch_embed", f"{cin}to{c}", at(1), dtype, runtime, bias), "patch_embed",
                     ((1, cin, h, w),), part="patch_embed")]
        for name, ch, s in (("down1_2", c, 1), ("down2_3", 2 * c, 2), ("down3_4", 4 * c, 4)):
            out.append(Entry(fixed_key("down", str(ch), at(s), dtype, runtime), "down", ((1, ch, *at(s)),), part=name))
        for name, ch, s in (("up4_3", 8 * c, 8), ("up3_2", 4 * c, 4), ("up2_1", 2 * c, 2)):
            out.append(Entry(fixed_key("up", str(ch), at(s), dtype, runtime), "up", ((1, ch, *at(s)),), part=name))
        for name, ch, s in (("reduce_chan_level3", 4 * c, 4), ("reduce_chan_level2", 2 * c, 2)):
            out.append(Entry(fixed_key("reduce", f"{ch}+{ch}to{ch}", at(s), dtype, runtime, bias), "reduce",
                             ((1, ch, *at(s)), (1, ch, *at(s))), part=name))
        out.append(Entry(fixed_key("concat", f"{c}+{c}", at(1), dtype, runtime), "concat",
                         ((1, c, h, w), (1, c, h, w)), part="concat_level1"))
        out.append(Entry(fixed_key("output", f"{2 * c}to{cout}", at(1), dtype, runtime, bias), "output",
                         ((1, 2 * c, h, w), (1, cin, h, w)), part="output"))
        return out

    def arch_entries(self, arch: Arch | str, hw: tuple[int, int], dtype: str, runtime: str) -> list[Entry]:
        """Everything one forward pass of ``arch`` runs, with multiplicity (a 4-block stage appears 4 times)."""
        arch = Arch.parse(arch) if isinstance(arch, str) else arch
        ops = arch.block_ops(self.sizes)
        blocks = [self.block_entry(si, op, hw, dtype, runtime) for si in range(len(STAGES)) for op in ops[si]]
        return self.fixed_entries(hw, dtype, runtime) + blocks

    def pair_entry(self, stage_idx: int, first: str, second: str, hw: tuple[int, int], dtype: str,
                   runtime: str) -> Entry:
        """Two consecutive blocks of a stage measured as one model: the in-context cost of their boundary."""
        a = self.block_entry(stage_idx, first, hw, dtype, runtime)
        b = self.block_entry(stage_idx, second, hw, dtype, runtime)
        key = f"pair-{a.key.removesuffix('-' + dtype + '-' + runtime)}+{b.key}"
        return Entry(key, "pair", a.input_shapes, part=f"{STAGES[stage_idx]}:{first}+{second}")

    def pair_entries(self, resolutions: Sequence[tuple[int, int]], dtype: str, runtime: str,
                     ops: Sequence[str] | None = None) -> list[Entry]:
        """Every distinct (block, next block) pair of every block shape, for boundary calibration."""
        ops = list(ops or BLOCK_PARAMS)
        seen: dict[str, Entry] = {}
        for hw in resolutions:
            for si in range(len(STAGES)):
                for a in ops:
                    for b in ops:
                        e = self.pair_entry(si, a, b, hw, dtype, runtime)
                        seen.setdefault(e.key, e)
        return list(seen.values())

    def arch_boundaries(self, arch: Arch | str, hw: tuple[int, int], dtype: str,
                        runtime: str) -> list[tuple[str, str, str]]:
        """(pair key, first block key, second block key) for every two blocks that follow each other directly:
        inside a stage, and from the level-1 decoder into the refinement stage (nothing runs between them)."""
        arch = Arch.parse(arch) if isinstance(arch, str) else arch
        ops = arch.block_ops(self.sizes)
        chains = [[(si, op) for op in ops[si]] for si in range(len(STAGES) - 2)]
        chains.append([(len(STAGES) - 2, op) for op in ops[-2]] + [(len(STAGES) - 1, op) for op in ops[-1]])
        out = []
        for chain in chains:
            for (si, a), (sj, b) in zip(chain, chain[1:]):
                pair = self.pair_entry(sj if si != sj else si, a, b, hw, dtype, runtime)
                out.append((pair.key, self.block_entry(si, a, hw, dtype, runtime).key,
                            self.block_entry(sj, b, hw, dtype, runtime).key))
        return out

    def all_entries(self, resolutions: Sequence[tuple[int, int]], dtype: str, runtime: str,
                    ops: Sequence[str] | None = None) -> list[Entry]:
        """Every distinct entry any arch of the supernet needs at these resolutions (each key once)."""
        ops = list(ops or BLOCK_PARAMS)
        seen: dict[str, Entry] = {}
        for hw in resolutions:
            for e in self.fixed_entries(hw, dtype, runtime):
                seen.setdefault(e.key, e)
            for si in range(len(STAGES)):
                for op in ops:
                    e = self.block_entry(si, op, hw, dtype, runtime)
                    seen.setdefault(e.key, e)
        return list(seen.values())
