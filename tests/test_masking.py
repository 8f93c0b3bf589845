"""Mask generators against paper eq. 3-5."""

import pytest
import torch

from mmmst.models import AttentionGuidedMaskGenerator, RandomMaskGenerator


def lowest(attn, k):
    """(B, N) bool: the k lowest-attention patches of each image."""
    out = torch.zeros_like(attn, dtype=torch.bool)
    return out.scatter_(1, attn.argsort(dim=1)[:, :k], True)


def test_attention_guided_mask_only_among_lowest_candidates():
    attn = torch.rand(64, 196).softmax(-1)
    gen = AttentionGuidedMaskGenerator(num=8, prob=0.5)
    candidates = lowest(attn, 196 // 8)
    for seed in range(20):
        mask = gen(attn, torch.Generator().manual_seed(seed))
        assert not (mask & ~candidates).any()


def test_attention_guided_mask_never_masks_high_attention_patches():
    attn = torch.rand(32, 64)
    mask = AttentionGuidedMaskGenerator(num=4, prob=1.0)(attn)
    # prob 1: exactly the lowest quarter, and each masked score is below every unmasked one
    assert torch.equal(mask, lowest(attn, 16))
    for a, m in zip(attn, mask):
        assert a[m].max() < a[~m].min()


def test_attention_guided_masked_fraction_is_prob_over_num():
    attn = torch.rand(512, 196)
    gen = AttentionGuidedMaskGenerator(num=8, prob=0.5)
    draws = torch.stack([gen(attn, torch.Generator().manual_seed(s)) for s in range(10)])
    expected = (196 // 8) * 0.5 / 196  # ~ prob / num
    assert draws.float().mean().item() == pytest.approx(expected, abs=0.003)


def test_random_masked_fraction_is_prob():
    attn = torch.rand(512, 196)
    mask = RandomMaskGenerator(prob=0.15)(attn, torch.Generator().manual_seed(0))
    assert mask.float().mean().item() == pytest.approx(0.15, abs=0.005)
    # random masking does not look at the scores: high-attention patches get masked too
    assert (mask & ~lowest(attn, 196 // 8)).any()


@pytest.mark.parametrize('gen', [AttentionGuidedMaskGenerator(num=8, prob=0.5), RandomMaskGenerator(prob=0.3)])
def test_same_generator_seed_gives_same_mask(gen):
    attn = torch.rand(8, 49)
    a = gen(attn, torch.Generator().manual_seed(3))
    b = gen(attn, torch.Generator().manual_seed(3))
    c = gen(attn, torch.Generator().manual_seed(4))
    assert a.dtype == torch.bool and a.shape == attn.shape
    assert torch.equal(a, b)
    assert not torch.equal(a, c)


def test_fewer_patches_than_num_masks_nothing():
    assert not AttentionGuidedMaskGenerator(num=8, prob=1.0)(torch.rand(2, 7)).any()


@pytest.mark.parametrize(
    'kwargs,field', [(dict(num=0), 'num'), (dict(num=2.5), 'num'), (dict(prob=-0.1), 'prob'), (dict(prob=1.5), 'prob')]
)
def test_attention_guided_bad_config_names_field(kwargs, field):
    with pytest.raises(ValueError, match=f'{field} must .* got {kwargs[field]}'):
        AttentionGuidedMaskGenerator(**kwargs)


def test_random_bad_prob_names_field():
    with pytest.raises(ValueError, match='prob must be in \\[0, 1\\], got 2'):
        RandomMaskGenerator(prob=2)
