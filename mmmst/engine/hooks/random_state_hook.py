"""Exact resume: the random number generators' states travel with the checkpoint."""

import random

import numpy as np
import torch
from mmengine.hooks import Hook

from mmmst.registry import HOOKS


@HOOKS.register_module()
class RandomStateHook(Hook):
    """Save the python, numpy and torch (CPU and CUDA) generator states in every checkpoint; restore them on resume.

    mmengine re-seeds a resumed run from the config's seed, so the crops, flips, blur sigmas, the masks (MST draws
    them from torch's generator) and the dataloader workers' seeds (drawn from torch's generator each epoch) after
    a resume differ from those of the uninterrupted run. With the states restored, N iterations straight equal
    N / 2, a kill and a resume, tensor for tensor (on the CPU; cuDNN kernels may still differ on a GPU). Only
    single-process resumes are restored: with several processes the file (written by rank 0) holds rank 0's
    states only, so such a resume is re-seeded by mmengine as before. ``load_from`` (fine-tuning) restores nothing.
    """

    priority = 'VERY_LOW'  # after every hook that may draw random numbers at a checkpoint

    def before_save_checkpoint(self, runner, checkpoint: dict) -> None:
        states = dict(
            python=random.getstate(),
            numpy=np.random.get_state(),
            torch=torch.get_rng_state(),
        )
        if torch.cuda.is_available() and torch.cuda.is_initialized():
            states['cuda'] = torch.cuda.get_rng_state()
        checkpoint['random_states'] = states

    def after_load_checkpoint(self, runner, checkpoint: dict) -> None:
        states = checkpoint.get('random_states')
        if states is None or not runner._resume or runner.world_size != 1:
            return  # a checkpoint from before this hook, a load_from (fine-tuning), or several processes
        random.setstate(_as_python_state(states['python']))
        np.random.set_state(states['numpy'])
        torch.set_rng_state(states['torch'])
        if 'cuda' in states and torch.cuda.is_available():
            torch.cuda.set_rng_state(states['cuda'])


def _as_python_state(state):
    """``random.setstate`` wants (int, tuple, None | float); weights-only loading gives back lists as saved."""
    version, internal, gauss = state
    return version, tuple(internal), gauss
