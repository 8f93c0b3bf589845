"""Stochastic-depth rates as Python floats, so that dynamo captures a backbone's forward in one graph."""

from mmcv.cnn.bricks import DropPath
from torch import nn


def python_drop_rates(backbone: nn.Module) -> None:
    """Turn every ``DropPath.drop_prob`` of ``backbone`` into a Python float, in place.

    mmpretrain draws the per-block rates with ``np.linspace``, so each block holds a numpy float; dynamo treats
    numpy values as tensors, and mmcv's ``if drop_prob == 0. or not training`` becomes data-dependent branching: a
    graph break in every block. The same rate as a Python float is the same maths and a constant to dynamo.
    """
    for module in backbone.modules():
        if isinstance(module, DropPath):
            module.drop_prob = float(module.drop_prob)
