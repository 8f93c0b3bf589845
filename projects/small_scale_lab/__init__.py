"""The small-scale lab: MST's mask-strategy ablation (paper tables 4 and 5) and recipe experiments on Fashion-MNIST
on a CPU, beside the library (mmpretrain's ``projects/`` convention). Importing it registers ``EpochSubsetSampler``."""

from .samplers import EpochSubsetSampler

__all__ = ['EpochSubsetSampler']
