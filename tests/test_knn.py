"""DINO's weighted k-NN against hand-computed votes."""

import math

import pytest
import torch

from mmmst.evaluation import knn_predict, knn_top1


def test_knn_votes_match_hand_computation():
    # bank on the unit circle; query at angle 0
    angles = torch.tensor([0.1, 0.2, 1.4, 1.5, 3.0])
    bank = torch.stack([angles.cos(), angles.sin()], dim=1) * 3.0  # scale: features get L2-normalised
    labels = torch.tensor([0, 1, 1, 1, 0])
    query = torch.tensor([[1.0, 0.0]])
    # k = 3 neighbours: angles 0.1 (class 0), 0.2 (class 1), 1.4 (class 1)
    T = 0.07
    vote0 = math.exp(math.cos(0.1) / T)
    vote1 = math.exp(math.cos(0.2) / T) + math.exp(math.cos(1.4) / T)
    assert vote0 > vote1  # the nearer class-0 neighbour outweighs two class-1 neighbours at T = 0.07
    assert knn_predict(bank, labels, query, num_classes=2, k=3, temperature=T).tolist() == [0]
    # at a high temperature the votes flatten and the majority wins
    assert knn_predict(bank, labels, query, num_classes=2, k=3, temperature=100.0).tolist() == [1]


def test_knn_top1_on_hand_made_set():
    bank = torch.tensor([[1.0, 0.0], [0.9, 0.1], [0.0, 1.0], [0.1, 0.9]])
    bank_labels = torch.tensor([0, 0, 1, 1])
    query = torch.tensor([[1.0, 0.05], [0.05, 1.0], [0.6, 0.4], [0.2, 1.0]])
    query_labels = torch.tensor([0, 1, 1, 1])  # the third is nearer class 0: a miss
    assert knn_top1(bank, bank_labels, query, query_labels, num_classes=2, k=2) == pytest.approx(75.0)


def test_knn_chunks_give_same_predictions():
    bank, labels, query = torch.randn(50, 8), torch.randint(0, 5, (50,)), torch.randn(33, 8)
    full = knn_predict(bank, labels, query, 5, k=7)
    assert torch.equal(full, knn_predict(bank, labels, query, 5, k=7, chunk_size=4))


def test_knn_bad_input():
    with pytest.raises(ValueError, match='k must be >= 1, got 0'):
        knn_predict(torch.randn(4, 2), torch.zeros(4), torch.randn(1, 2), 2, k=0)
    with pytest.raises(ValueError, match='4 bank features but 3 labels'):
        knn_predict(torch.randn(4, 2), torch.zeros(3), torch.randn(1, 2), 2)


def test_knn_top1_clamps_k_to_the_bank_size():
    """k above the bank size votes with the whole bank, as the independent reference does, instead of failing."""
    from tests.helpers import reference_knn_top1

    generator = torch.Generator().manual_seed(0)
    bank, query = torch.randn(5, 8, generator=generator), torch.randn(12, 8, generator=generator)
    bank_labels, query_labels = torch.tensor([0, 1, 2, 1, 0]), torch.randint(0, 3, (12,), generator=generator)
    whole_bank = knn_top1(bank, bank_labels, query, query_labels, num_classes=3, k=5)
    assert knn_top1(bank, bank_labels, query, query_labels, num_classes=3, k=20) == whole_bank
    assert whole_bank == pytest.approx(reference_knn_top1(bank, bank_labels, query, query_labels, 3, k=20))


def test_knn_top1_against_the_independent_reference():
    generator = torch.Generator().manual_seed(1)
    bank, query = torch.randn(60, 16, generator=generator), torch.randn(25, 16, generator=generator)
    bank_labels, query_labels = torch.randint(0, 4, (60,), generator=generator), torch.randint(0, 4, (25,))
    from tests.helpers import reference_knn_top1

    for k, temperature in ((1, 0.07), (7, 0.07), (20, 0.5)):
        ours = knn_top1(bank, bank_labels, query, query_labels, 4, k, temperature)
        assert ours == pytest.approx(reference_knn_top1(bank, bank_labels, query, query_labels, 4, k, temperature))


def test_leave_one_out_never_counts_an_image_as_its_own_neighbour():
    """Pairs of near-identical images with different labels: each image's nearest *other* image has the other label,
    so the leave-one-out 1-NN is 0 %; an image voting for itself would make it 100 %. Also with chunks smaller than
    the set (the exclusion is placed per chunk)."""
    from mmmst.evaluation import knn_top1_leave_one_out, nearest_neighbours

    angles = torch.tensor([0.0, 0.01, 1.5, 1.51, 3.0, 3.01])
    feats = torch.stack([angles.cos(), angles.sin()], dim=1)
    labels = torch.tensor([0, 1, 0, 1, 0, 1])
    assert knn_top1_leave_one_out(feats, labels, num_classes=2, k=1) == 0.0
    _, idx = nearest_neighbours(feats, k=1, chunk_size=4)
    assert idx.flatten().tolist() == [1, 0, 3, 2, 5, 4]
