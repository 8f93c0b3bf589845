"""Mask generators against paper eq. 3-5."""

import pytest
import torch

from mmmst.models import (
    AttentionGuidedMaskGenerator,
    BlockMaskGenerator,
    HighAttentionMaskGenerator,
    RandomMaskGenerator,
)


def lowest(attn, k):
    """(B, N) bool: the k lowest-attention patches of each image, found without sorting (an independent reference
    to the generators' argsort): every value at or below the image's k-th smallest."""
    out = attn <= attn.kthvalue(k, dim=1, keepdim=True).values
    assert (out.sum(dim=1) == k).all(), 'a tie at the k-th value would make "the k lowest" ambiguous'
    return out


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


# --- the follow-up work's strategies (AttMask, BEiT / iBOT) and the per-image options ---


def test_high_attention_mask_takes_exactly_the_most_attended_patches():
    """AttMask-High: the round(r N) highest-attention patches, the opposite of MST's candidates."""
    attn = torch.rand(32, 49)
    mask = HighAttentionMaskGenerator(ratio=0.3)(attn)
    k = round(0.3 * 49)
    assert torch.equal(mask, lowest(-attn, k))
    for a, m in zip(attn, mask):
        assert a[m].min() > a[~m].max()


def test_hint_mask_reveals_a_fraction_of_the_most_attended_patches():
    attn = torch.rand(512, 49)
    top = lowest(-attn, round(0.5 * 49))
    mask = HighAttentionMaskGenerator(ratio=0.5, hint=0.2)(attn, torch.Generator().manual_seed(0))
    assert not (mask & ~top).any()  # only among the most attended
    revealed = (top & ~mask).sum() / top.sum()
    assert revealed.item() == pytest.approx(0.2, abs=0.01)


def test_ratio_range_is_drawn_per_image():
    attn = torch.rand(2000, 100)
    mask = HighAttentionMaskGenerator(ratio=(0.1, 0.5))(attn, torch.Generator().manual_seed(0))
    per_image = mask.float().mean(1)
    assert per_image.min() >= 0.1 - 1e-6 and per_image.max() <= 0.5 + 1e-6
    assert per_image.mean().item() == pytest.approx(0.3, abs=0.01)
    assert per_image.std().item() == pytest.approx(0.4 / 12**0.5, abs=0.01)  # U(0.1, 0.5)
    # MST's generator takes its candidate probability as a range the same way
    mst = AttentionGuidedMaskGenerator(num=1, prob=(0.2, 0.6))(attn, torch.Generator().manual_seed(0))
    assert mst.float().mean(1).std().item() > 0.08  # a fixed 0.4 would give ~0.05 (binomial noise)
    assert mst.float().mean().item() == pytest.approx(0.4, abs=0.01)


@pytest.mark.parametrize(
    'gen',
    [
        AttentionGuidedMaskGenerator(num=2, prob=1.0, image_prob=0.3),
        RandomMaskGenerator(prob=0.5, image_prob=0.3),
        HighAttentionMaskGenerator(ratio=0.4, image_prob=0.3),
        BlockMaskGenerator(ratio=0.4, image_prob=0.3),
    ],
)
def test_image_prob_is_the_fraction_of_images_masked_at_all(gen):
    mask = gen(torch.rand(4000, 49), torch.Generator().manual_seed(0))
    assert mask.any(1).float().mean().item() == pytest.approx(0.3, abs=0.02)


def test_block_mask_is_rectangles_within_each_images_target():
    attn = torch.rand(500, 196)
    gen = BlockMaskGenerator(ratio=(0.1, 0.5), min_block=16)
    mask = gen(attn, torch.Generator().manual_seed(0))
    counts = mask.sum(1)
    assert counts.max() <= round(0.5 * 196)
    assert (counts >= 16).float().mean() > 0.95  # nearly every image gets at least one whole block
    assert counts.float().mean().item() > 0.2 * 196  # the blocks fill most of each target
    # the same number of masked patches as random masking, but spatially grouped: most masked patches have a
    # masked 4-neighbour (random masking at this ratio leaves many isolated)
    grid = mask.view(-1, 14, 14).float()
    neighbours = torch.nn.functional.conv2d(
        grid[:, None], torch.tensor([[[[0.0, 1, 0], [1, 0, 1], [0, 1, 0]]]]), padding=1
    )[:, 0]
    grouped = ((neighbours > 0) & (grid > 0)).sum() / grid.sum()
    assert grouped.item() > 0.95
    # independent of the attention values
    assert torch.equal(gen(attn, torch.Generator().manual_seed(1)), gen(attn * 0, torch.Generator().manual_seed(1)))


def test_block_mask_of_a_single_rectangle_matches_its_size():
    """ratio 9/49 with min_block 9 and aspect 1: every image is one 3 x 3 square."""
    mask = BlockMaskGenerator(ratio=9 / 49, min_block=9, aspect=(1.0, 1.0))(torch.rand(50, 49))
    grid = mask.view(-1, 7, 7)
    for m in grid:
        rows, cols = m.any(1).nonzero().flatten(), m.any(0).nonzero().flatten()
        assert (
            m.sum() == 9
            and len(rows) == 3
            and len(cols) == 3
            and m[rows[0] : rows[-1] + 1, cols[0] : cols[-1] + 1].all()
        )


@pytest.mark.parametrize(
    'build,match',
    [
        (lambda: HighAttentionMaskGenerator(ratio=(0.5, 0.1)), 'ratio must satisfy 0 <= lo <= hi <= 1'),
        (lambda: HighAttentionMaskGenerator(ratio='abc'), "ratio must be a number or a \\(lo, hi\\) pair, got 'abc'"),
        (lambda: HighAttentionMaskGenerator(hint=1.0), 'hint must be in \\[0, 1\\), got 1.0'),
        (lambda: BlockMaskGenerator(min_block=0), 'min_block must be an int >= 1, got 0'),
        (lambda: BlockMaskGenerator(image_prob=2), 'image_prob must be in \\[0, 1\\], got 2'),
        (lambda: AttentionGuidedMaskGenerator(prob='abc'), "prob must be a number or a \\(lo, hi\\) pair, got 'abc'"),
    ],
)
def test_related_generators_bad_config_names_the_value(build, match):
    with pytest.raises(ValueError, match=match):
        build()


def test_block_mask_needs_a_square_grid():
    with pytest.raises(ValueError, match='square patch grid, got 50 patches'):
        BlockMaskGenerator()(torch.rand(2, 50))
