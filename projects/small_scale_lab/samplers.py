"""A sampler whose epoch is a new random subset of the dataset: a short epoch-based run over a large set."""

import math
from typing import Iterator, Optional, Sized

import torch
from mmengine.dataset import DefaultSampler
from mmengine.dist import get_dist_info, sync_random_seed
from mmpretrain.registry import DATA_SAMPLERS


@DATA_SAMPLERS.register_module()
class EpochSubsetSampler(DefaultSampler):
    """Every epoch draws ``samples_per_epoch`` indices without replacement from the *whole* dataset, a new draw each
    epoch, and splits them over the processes as mmengine's ``DefaultSampler`` does.

    DINO's schedules count epochs (learning-rate warm-up, teacher-temperature warm-up, last-layer freeze). With this
    sampler a run keeps the epochs of a small subset (say 10,000 images x 5 epochs = 780 iterations at batch 64)
    while its images come from a larger set (all 60,000): each epoch sees other images, none twice within it.

    The draw of epoch e is ``randperm(len(dataset), seed + e)[:samples_per_epoch]``, the same on every process
    (``seed=None`` takes a seed broadcast from rank 0, as ``DefaultSampler`` does); process r of W then takes every
    W-th index from r, after ``round_up`` pads the draw to a multiple of W.

    Args:
        dataset (Sized): the dataset.
        samples_per_epoch (int): indices drawn per epoch (all processes together), 1 <= it <= len(dataset).
        shuffle (bool): must be True (the subset is a random draw); accepted so that a config's
            ``sampler=dict(type='DefaultSampler', shuffle=True)`` can change only its ``type``.
        seed (int, optional): the draws' seed, identical on every process. Defaults to None (synchronised).
        round_up (bool): pad the draw to a multiple of the world size. Defaults to True.
    """

    def __init__(
        self,
        dataset: Sized,
        samples_per_epoch: int,
        shuffle: bool = True,
        seed: Optional[int] = None,
        round_up: bool = True,
    ) -> None:
        if isinstance(samples_per_epoch, bool) or not isinstance(samples_per_epoch, int):
            raise TypeError(f'EpochSubsetSampler: samples_per_epoch must be an int, got {samples_per_epoch!r}')
        if not 1 <= samples_per_epoch <= len(dataset):
            raise ValueError(
                f'EpochSubsetSampler: samples_per_epoch must be between 1 and the dataset size {len(dataset)}, '
                f'got {samples_per_epoch}'
            )
        if not shuffle:
            raise ValueError('EpochSubsetSampler: shuffle=False is not supported (each epoch is a random draw)')
        self.rank, self.world_size = get_dist_info()
        self.dataset = dataset
        self.samples_per_epoch = samples_per_epoch
        self.shuffle = True
        self.seed = sync_random_seed() if seed is None else seed
        self.epoch = 0
        self.round_up = round_up
        if round_up:
            self.num_samples = math.ceil(samples_per_epoch / self.world_size)
            self.total_size = self.num_samples * self.world_size
        else:
            self.num_samples = math.ceil((samples_per_epoch - self.rank) / self.world_size)
            self.total_size = samples_per_epoch

    def __iter__(self) -> Iterator[int]:
        generator = torch.Generator().manual_seed(self.seed + self.epoch)
        indices = torch.randperm(len(self.dataset), generator=generator)[: self.samples_per_epoch].tolist()
        if self.round_up:  # pad with the draw's own first indices, as DefaultSampler does
            indices = (indices * math.ceil(self.total_size / len(indices)))[: self.total_size]
        return iter(indices[self.rank : self.total_size : self.world_size])
