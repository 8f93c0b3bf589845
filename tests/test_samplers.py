"""The small-scale lab's EpochSubsetSampler: a new random subset of the whole dataset every epoch, split over
processes as in mmengine."""

import pytest
import torch
import torch.multiprocessing as mp
from torch import distributed as dist

from projects.small_scale_lab import EpochSubsetSampler


def epoch_draw(sampler, epoch):
    sampler.set_epoch(epoch)
    return list(sampler)


def test_each_epoch_is_a_new_draw_of_distinct_indices_from_the_whole_set():
    sampler = EpochSubsetSampler(range(100), samples_per_epoch=10, seed=3)
    draws = [epoch_draw(sampler, e) for e in range(10)]
    assert len(sampler) == 10
    for draw in draws:
        assert len(draw) == 10 and len(set(draw)) == 10 and all(0 <= i < 100 for i in draw)
    assert len({tuple(d) for d in draws}) == 10  # every epoch another subset
    assert len(set().union(*draws)) > 50  # ten epochs reach well beyond one subset of 10
    assert draws[4] == epoch_draw(EpochSubsetSampler(range(100), samples_per_epoch=10, seed=3), 4)  # seeded


def test_the_draw_is_the_head_of_mmengines_shuffled_epoch():
    """Independent reference: mmengine's DefaultSampler with the same seed shuffles the whole set at each epoch;
    the subset of that epoch is the head of its order."""
    from mmengine.dataset import DefaultSampler

    sampler = EpochSubsetSampler(range(50), samples_per_epoch=7, seed=5)
    reference = DefaultSampler(range(50), shuffle=True, seed=5)
    for epoch in (0, 2):
        assert epoch_draw(sampler, epoch) == epoch_draw(reference, epoch)[:7]


@pytest.mark.parametrize('value', [0, 101, 2.5, True])
def test_bad_samples_per_epoch_is_refused_by_value(value):
    with pytest.raises((ValueError, TypeError), match=repr(value) if isinstance(value, (float, bool)) else str(value)):
        EpochSubsetSampler(range(100), samples_per_epoch=value, seed=0)


def test_shuffle_false_is_refused():
    with pytest.raises(ValueError, match='shuffle=False'):
        EpochSubsetSampler(range(100), samples_per_epoch=10, shuffle=False, seed=0)


def test_a_runner_built_loader_has_the_subset_length():
    from mmengine.runner import Runner

    loader = Runner.build_dataloader(
        dict(
            batch_size=4,
            num_workers=0,
            sampler=dict(type='EpochSubsetSampler', samples_per_epoch=12, shuffle=True, seed=0),
            dataset=list(range(60)),
        )
    )
    assert len(loader) == 3 and sum(len(batch) for batch in loader) == 12


def _worker(rank, init_file, out_file):
    dist.init_process_group('gloo', init_method=f'file://{init_file}', rank=rank, world_size=2)
    torch.manual_seed(rank)  # seed=None must still give both processes one draw (rank 0's seed, broadcast)
    sampler = EpochSubsetSampler(range(100), samples_per_epoch=11)
    torch.save(
        dict(rank=rank, epochs=[epoch_draw(sampler, e) for e in range(3)], length=len(sampler)), f'{out_file}.{rank}'
    )
    dist.barrier()
    dist.destroy_process_group()


def test_two_gloo_processes_split_one_draw(tmp_path):
    out = tmp_path / 'draws'
    # fork: the children need this module's functions, and 'tests' is not an importable package here
    mp.start_processes(_worker, args=(str(tmp_path / 'init'), str(out)), nprocs=2, start_method='fork')
    ranks = [torch.load(f'{out}.{r}') for r in range(2)]
    assert [r['length'] for r in ranks] == [6, 6]  # 11 rounded up to 12, 6 per process
    for epoch in range(3):
        first, second = ranks[0]['epochs'][epoch], ranks[1]['epochs'][epoch]
        merged = [i for pair in zip(first, second) for i in pair]  # process r holds every 2nd index from r
        assert len(set(merged[:11])) == 11 and merged[11] == merged[0]  # one draw of 11, padded with its first
    assert ranks[0]['epochs'][0] != ranks[0]['epochs'][1]
