"""Training: the three supernet phases (teacher, block-wise distillation, random-path supernet), subnet
fine-tuning, and the loop habits they share (schedule, EMA, AMP, DDP, checkpoints, logging)."""
from supernet.training.loop import Phase, RunState, Trainer, TrainingDiverged
from supernet.training.phases import LOSSES, BlockDistillObjective, PathObjective, step_arch
from supernet.training.run import PHASES, build_phase, run_phases, summary, train_subnet, train_supernet

__all__ = ["Phase", "RunState", "Trainer", "TrainingDiverged", "LOSSES", "BlockDistillObjective", "PathObjective",
           "step_arch", "PHASES", "build_phase", "run_phases", "summary", "train_subnet", "train_supernet"]
