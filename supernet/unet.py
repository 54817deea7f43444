"""The Restormer U-Net with a pluggable block per slot: the weight-sharing supernet and its extracted subnets.

Read top to bottom: ``Slot`` (candidates keyed by op name) -> ``RestormerUNet`` (the U-Net, built from a block
factory) -> ``HybridUNet`` (every slot holds a transformer and an SSM block) and ``RestorationUNet`` (one fixed
block per slot: what ``HybridUNet.extract(arch)`` returns). Module names follow Restormer's ``restormer_arch.py``
(``encoder_level1``, ``down1_2``, ``reduce_chan_level3``, ``refinement``, ``output``...), so an extracted
all-transformer subnet has exactly Restormer's state-dict keys.
"""
from __future__ import annotations

import random
from typing import Any, Callable, Optional, Sequence

import torch
import torch.nn as nn
import torch.nn.functional as F

from .arch import STAGES, Arch
from .blocks import Downsample, OverlapPatchEmbed, TransformerBlock, Upsample
from .ssm import SSMBlock, SSMOptions

# stage name -> Restormer's module name
STAGE_MODULES: dict[str, str] = {
    "enc1": "encoder_level1", "enc2": "encoder_level2", "enc3": "encoder_level3", "latent": "latent",
    "dec3": "decoder_level3", "dec2": "decoder_level2", "dec1": "decoder_level1", "refinement": "refinement",
}
# channels (as a multiple of dim), head-list index and downsampling factor of every stage
STAGE_LAYOUT: dict[str, tuple[int, int, int]] = {
    "enc1": (1, 0, 1), "enc2": (2, 1, 2), "enc3": (4, 2, 4), "latent": (8, 3, 8),
    "dec3": (4, 2, 4), "dec2": (2, 1, 2), "dec1": (2, 0, 1), "refinement": (2, 0, 1),
}
PAD_MULTIPLE = 8  # three 2x downsamplings

BlockFactory = Callable[[str, int, int, int], nn.Module]  # (stage, index, channels, heads) -> block


def unet_stage_sizes(num_blocks: Sequence[int] = (4, 6, 6, 8), num_refinement_blocks: int = 4) -> tuple[int, ...]:
    """Blocks per stage in STAGES order: the decoder mirrors the encoder, then the refinement stage."""
    nb = list(num_blocks)
    return (nb[0], nb[1], nb[2], nb[3], nb[2], nb[1], nb[0], num_refinement_blocks)


class Slot(nn.Module):
    """One block position of the supernet: candidates keyed by op name, one of them active."""

    def __init__(self, candidates: dict[str, nn.Module], active: str = "transformer") -> None:
        super().__init__()
        self.candidates = nn.ModuleDict(candidates)
        self.active = active

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.candidates[self.active](x)


def pad_to_multiple(x: torch.Tensor, multiple: int = PAD_MULTIPLE) -> tuple[torch.Tensor, int, int]:
    """Reflect-pad H and W up to a multiple (replicate where the image is too small to reflect)."""
    h, w = x.shape[-2:]
    ph, pw = (multiple - h % multiple) % multiple, (multiple - w % multiple) % multiple
    if ph or pw:
        mode = "reflect" if ph < h and pw < w else "replicate"
        x = F.pad(x, (0, pw, 0, ph), mode=mode)
    return x, h, w


class RestormerUNet(nn.Module):
    """Restormer's U-Net; ``make_block(stage, index, channels, heads)`` builds every block."""

    def __init__(self, make_block: BlockFactory, inp_channels: int = 3, out_channels: int = 3, dim: int = 48,
                 num_blocks: Sequence[int] = (4, 6, 6, 8), num_refinement_blocks: int = 4,
                 heads: Sequence[int] = (1, 2, 4, 8), ffn_expansion_factor: float = 2.66, bias: bool = False,
                 LayerNorm_type: str = "WithBias", dual_pixel_task: bool = False) -> None:  # noqa: N803
        super().__init__()
        if len(num_blocks) != 4 or len(heads) != 4:
            raise ValueError(f"num_blocks and heads need 4 entries (levels 1-3 and latent), got {list(num_blocks)}"
                             f" and {list(heads)}")
        self.inp_channels, self.out_channels, self.dim = inp_channels, out_channels, dim
        self.dual_pixel_task = dual_pixel_task
        self.stage_sizes = unet_stage_sizes(num_blocks, num_refinement_blocks)
        self.stage_dims = tuple(STAGE_LAYOUT[s][0] * dim for s in STAGES)
        self.stage_heads = tuple(heads[STAGE_LAYOUT[s][1]] for s in STAGES)
        self.stage_scales = tuple(STAGE_LAYOUT[s][2] for s in STAGES)

        def stage(i: int) -> nn.Sequential:
            name = STAGES[i]
            return nn.Sequential(*[make_block(name, j, self.stage_dims[i], self.stage_heads[i])
                                   for j in range(self.stage_sizes[i])])

        self.patch_embed = OverlapPatchEmbed(inp_channels, dim)  # Restormer never gives the embedding a bias
        self.encoder_level1 = stage(0)
        self.down1_2 = Downsample(dim)
        self.encoder_level2 = stage(1)
        self.down2_3 = Downsample(dim * 2)
        self.encoder_level3 = stage(2)
        self.down3_4 = Downsample(dim * 4)
        self.latent = stage(3)
        self.up4_3 = Upsample(dim * 8)
        self.reduce_chan_level3 = nn.Conv2d(dim * 8, dim * 4, kernel_size=1, bias=bias)
        self.decoder_level3 = stage(4)
        self.up3_2 = Upsample(dim * 4)
        self.reduce_chan_level2 = nn.Conv2d(dim * 4, dim * 2, kernel_size=1, bias=bias)
        self.decoder_level2 = stage(5)
        self.up2_1 = Upsample(dim * 2)  # no channel reduction at level 1: the decoder works on 2*dim
        self.decoder_level1 = stage(6)
        self.refinement = stage(7)
        if dual_pixel_task:
            self.skip_conv = nn.Conv2d(dim, dim * 2, kernel_size=1, bias=bias)
        self.output = nn.Conv2d(dim * 2, out_channels, kernel_size=3, stride=1, padding=1, bias=bias)

    def check_input(self, x: torch.Tensor) -> None:
        if x.dim() != 4:
            raise ValueError(f"expected a 4-D (B, {self.inp_channels}, H, W) tensor, got shape {tuple(x.shape)}")
        if x.shape[1] != self.inp_channels:
            raise ValueError(f"expected {self.inp_channels} input channels, got {x.shape[1]} "
                             f"(shape {tuple(x.shape)})")

    def forward(self, inp_img: torch.Tensor) -> torch.Tensor:
        """Restore (B, C, H, W); H and W need not be multiples of 8 (reflect-padded, then cropped back)."""
        self.check_input(inp_img)
        x, h, w = pad_to_multiple(inp_img)
        return self.forward_padded(x)[..., :h, :w]

    def forward_padded(self, inp_img: torch.Tensor) -> torch.Tensor:
        """Restormer's forward for inputs whose H and W are multiples of 8."""
        out_enc1 = self.encoder_level1(self.patch_embed(inp_img))
        out_enc2 = self.encoder_level2(self.down1_2(out_enc1))
        out_enc3 = self.encoder_level3(self.down2_3(out_enc2))
        latent = self.latent(self.down3_4(out_enc3))
        dec3 = self.reduce_chan_level3(torch.cat([self.up4_3(latent), out_enc3], 1))
        dec3 = self.decoder_level3(dec3)
        dec2 = self.reduce_chan_level2(torch.cat([self.up3_2(dec3), out_enc2], 1))
        dec2 = self.decoder_level2(dec2)
        dec1 = self.decoder_level1(torch.cat([self.up2_1(dec2), out_enc1], 1))
        dec1 = self.refinement(dec1)
        if self.dual_pixel_task:
            return self.output(dec1 + self.skip_conv(self.patch_embed(inp_img)))
        return self.output(dec1) + inp_img

    def stage_modules(self) -> list[nn.Sequential]:
        return [getattr(self, STAGE_MODULES[s]) for s in STAGES]


def _restormer_args(config: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in config.items() if k != "ssm"}


class HybridUNet(RestormerUNet):
    """The supernet: every slot holds ``transformer`` (Restormer's block) and ``ssm`` (:class:`SSMBlock`)."""

    def __init__(self, inp_channels: int = 3, out_channels: int = 3, dim: int = 48,
                 num_blocks: Sequence[int] = (4, 6, 6, 8), num_refinement_blocks: int = 4,
                 heads: Sequence[int] = (1, 2, 4, 8), ffn_expansion_factor: float = 2.66, bias: bool = False,
                 LayerNorm_type: str = "WithBias", dual_pixel_task: bool = False,  # noqa: N803
                 ssm: Optional[dict | SSMOptions] = None) -> None:
        ssm_opts = SSMOptions.from_any(ssm)
        self.config = dict(inp_channels=inp_channels, out_channels=out_channels, dim=dim,
                           num_blocks=list(num_blocks), num_refinement_blocks=num_refinement_blocks,
                           heads=list(heads), ffn_expansion_factor=ffn_expansion_factor, bias=bias,
                           LayerNorm_type=LayerNorm_type, dual_pixel_task=dual_pixel_task, ssm=ssm_opts.to_dict())
        candidates = make_candidates(ffn_expansion_factor, bias, LayerNorm_type, ssm_opts)

        def make_slot(stage: str, index: int, channels: int, heads_: int) -> nn.Module:
            return Slot({op: build(stage, channels, heads_) for op, build in candidates.items()})

        super().__init__(make_slot, **_restormer_args(self.config))
        self.ssm_options = ssm_opts
        self.arch = Arch.uniform(self, "T")

    # ---- explicit supernet state ----------------------------------------------------------------------
    def slots(self) -> list[tuple[str, int, Slot]]:
        """Every slot as (stage, index, slot), in canonical order."""
        return [(s, i, slot) for s, mod in zip(STAGES, self.stage_modules()) for i, slot in enumerate(mod)]

    def set_arch(self, arch: Arch | str) -> Arch:
        """Make the supernet compute ``arch``'s path; returns the Arch."""
        arch = Arch.parse(arch) if isinstance(arch, str) else arch
        ops = arch.block_ops(self)
        for (stage_idx, index), slot in zip(((si, i) for si, n in enumerate(self.stage_sizes) for i in range(n)),
                                            (slot for _, _, slot in self.slots())):
            slot.active = ops[stage_idx][index]
        self.arch = arch
        return arch

    def sample_arch(self, rng: random.Random | int | None, granularity: str = "stage") -> Arch:
        """A seeded random arch (not applied: pass it to :meth:`set_arch`)."""
        return Arch.random(self, rng, granularity)

    def path_state_dict(self, arch: Arch) -> dict[str, torch.Tensor]:
        """The weights of ``arch``'s path under the extracted subnet's key names."""
        ops = arch.block_ops(self)
        out: dict[str, torch.Tensor] = {}
        prefixes = {f"{STAGE_MODULES[s]}.{i}.candidates.": ops[si][i]
                    for si, s in enumerate(STAGES) for i in range(self.stage_sizes[si])}
        for key, value in self.state_dict().items():
            if ".candidates." not in key:
                out[key] = value
                continue
            slot_prefix, rest = key.split(".candidates.", 1)
            op, sub = rest.split(".", 1)
            if prefixes[slot_prefix + ".candidates."] == op:
                out[f"{slot_prefix}.{sub}"] = value
        return out

    def extract(self, arch: Arch | str) -> "RestorationUNet":
        """A plain network holding copies of ``arch``'s weights only; same output as the supernet on that path."""
        arch = Arch.parse(arch) if isinstance(arch, str) else arch
        sub = RestorationUNet(arch, **self.config)
        sub.load_state_dict(self.path_state_dict(arch), strict=True)
        return sub.to(next(self.parameters()).device)


def make_candidates(ffn_expansion_factor: float, bias: bool, LayerNorm_type: str,  # noqa: N803
                    ssm: SSMOptions) -> dict[str, Callable[[str, int, int], nn.Module]]:
    """Block builders ``(stage, channels, heads) -> block`` keyed by op name; the single place that knows which ops
    exist."""
    return {
        "transformer": lambda stage, channels, heads: TransformerBlock(channels, heads, ffn_expansion_factor, bias,
                                                                       LayerNorm_type),
        "ssm": lambda stage, channels, heads: SSMBlock(channels, **ssm.for_stage(stage).to_dict()),
    }


class RestorationUNet(RestormerUNet):
    """A static hybrid network: one block per slot, as chosen by ``arch``. All-T is exactly Restormer."""

    def __init__(self, arch: Arch | str, ssm: Optional[dict | SSMOptions] = None, **restormer_args: Any) -> None:
        arch = Arch.parse(arch) if isinstance(arch, str) else arch
        ssm_opts = SSMOptions.from_any(ssm)
        ops = arch.block_ops(unet_stage_sizes(restormer_args.get("num_blocks", (4, 6, 6, 8)),
                                              restormer_args.get("num_refinement_blocks", 4)))
        candidates = make_candidates(restormer_args.get("ffn_expansion_factor", 2.66),
                                     restormer_args.get("bias", False),
                                     restormer_args.get("LayerNorm_type", "WithBias"), ssm_opts)

        def make_block(stage: str, index: int, channels: int, heads: int) -> nn.Module:
            return candidates[ops[STAGES.index(stage)][index]](stage, channels, heads)

        super().__init__(make_block, **restormer_args)
        self.arch = arch
        self.config = dict(restormer_args, ssm=ssm_opts.to_dict())
