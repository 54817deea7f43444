"""ENS supernet: the hybrid Transformer/SSM Restormer U-Net, its Arch values and weight loading."""
from .arch import STAGES, Arch, all_stage_archs, slot_names
from .blocks import TransformerBlock
from .restormer_weights import load_restormer
from .ssm import SSMBlock, SSMOptions
from .unet import HybridUNet, RestorationUNet, RestormerUNet, Slot

__all__ = ["STAGES", "Arch", "all_stage_archs", "slot_names", "TransformerBlock", "load_restormer", "SSMBlock",
           "SSMOptions", "HybridUNet", "RestorationUNet", "RestormerUNet", "Slot"]
