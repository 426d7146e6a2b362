"""Each trainer's own [training] options, declared here without torch so that reading a spec never loads it.

A trainer is a step function in train.TRAINERS and the dataclass of its options in OPTIONS, under the same name
(tests/test_spec.py checks that the two registries agree). A spec's [training] table stays flat: its keys are the
options every trainer shares (spec.TrainingSpec) and those of the chosen trainer, e.g. `lr = 1e-2` for Adam.
spec.py builds the chosen trainer's dataclass into `spec.training.options`, rejects a key no trainer of that name
declares in one line, and asks the options to check themselves (check()).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar


@dataclass
class AdamOptions:
    """Minibatch Adam with a cosine learning-rate decay (train.adam_steps)."""

    lr: float = 3e-3
    """peak learning rate"""
    batch_size: int = 256
    """minibatch size"""
    default_steps: ClassVar[int] = 20000
    """training.max_steps when the spec leaves it 0"""

    def check(self) -> str:
        """What is wrong with these options, naming the key (without the "training." prefix); "" when nothing."""
        if not self.lr > 0:
            return f"lr must be > 0, got {self.lr}"
        if self.batch_size < 1:
            return f"batch_size must be >= 1, got {self.batch_size}"
        return ""


@dataclass
class LMOptions(AdamOptions):
    """Levenberg-Marquardt (train.lm_steps): its memory bound, and (inherited) the options of the Adam it gives way
    to when its normal equations would not fit in that bound (train.choose_trainer)."""

    lm_memory_gb: float = 1.0
    """LM's memory bound (GB): a block of the Jacobian fits it, as do the blocks built at once with their JᵀJ (fewer
    threads where they would not), and JᵀJ itself"""
    default_steps: ClassVar[int] = 2000
    """LM steps are full-batch: far fewer are needed than Adam's"""

    def check(self) -> str:
        if not self.lm_memory_gb > 0:
            return f"lm_memory_gb must be > 0, got {self.lm_memory_gb}"
        return super().check()


OPTIONS: dict[str, type] = {"lm": LMOptions, "adam": AdamOptions}
"""training.trainer -> the dataclass of its options (a trainer's step function is train.TRAINERS[name])"""
