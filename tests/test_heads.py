"""DINONeck, DINOHead (DINO loss, centre, temperature) and MSTDecoder against their equations."""

import math

import pytest
import torch

from mmmst.models import DINOHead, DINONeck, MSTDecoder


def test_neck_projects_to_normalised_bottleneck_then_prototypes():
    neck = DINONeck(in_channels=8, out_channels=5, hidden_channels=16, bottleneck_channels=4)
    neck.init_weights()
    x = torch.randn(3, 8)
    z = torch.nn.functional.normalize(neck.mlp(x), dim=-1)
    v = neck.last_layer.parametrizations.weight.original1  # direction, (5, 4)
    expected = z @ (v / v.norm(dim=1, keepdim=True)).t()  # magnitude g = 1
    torch.testing.assert_close(neck(x), expected)
    assert len(neck.mlp) == 5  # Linear GELU Linear GELU Linear


@pytest.mark.parametrize('norm_last_layer', [True, False])
def test_neck_norm_last_layer_freezes_magnitude(norm_last_layer):
    neck = DINONeck(in_channels=8, out_channels=5, norm_last_layer=norm_last_layer)
    assert neck.last_layer.parametrizations.weight.original0.requires_grad is (not norm_last_layer)


def test_neck_bad_config():
    with pytest.raises(ValueError, match='num_layers must be a positive int, got 0'):
        DINONeck(in_channels=8, num_layers=0)


def test_dino_loss_equals_hand_computed_cross_entropy():
    """2 images, 2 global + 1 local student views, 3 prototypes, centre 0, T_s = 0.1, T_t = 0.04."""
    head = DINOHead(out_channels=3, student_temp=0.1, warmup_teacher_temp=0.04)
    teacher = [torch.tensor([[1.0, 0.0, 0.0], [0.0, 0.5, 0.0]]), torch.tensor([[0.0, 0.0, 1.0], [0.2, 0.0, 0.0]])]
    student = [
        torch.tensor([[0.3, 0.1, 0.0], [0.0, 0.0, 0.4]]),
        torch.tensor([[0.0, 0.2, 0.0], [0.1, 0.1, 0.1]]),
        torch.tensor([[0.5, 0.0, 0.5], [0.0, 0.3, 0.0]]),
    ]

    def softmax(row, temp):
        e = [math.exp(v / temp) for v in row]
        return [v / sum(e) for v in e]

    pairs = []
    for i, t_view in enumerate(teacher):
        for v, s_view in enumerate(student):
            if v == i:
                continue
            per_image = []
            for t_row, s_row in zip(t_view.tolist(), s_view.tolist()):
                p, q = softmax(t_row, 0.04), softmax(s_row, 0.1)
                per_image.append(-sum(pk * math.log(qk) for pk, qk in zip(p, q)))
            pairs.append(sum(per_image) / len(per_image))
    expected = sum(pairs) / len(pairs)  # 4 pairs: (0,1) (0,2) (1,0) (1,2)
    assert len(pairs) == 4
    assert head.loss(student, teacher)['loss_dino'].item() == pytest.approx(expected, rel=1e-5)


def test_teacher_logits_are_centred_before_sharpening():
    head = DINOHead(out_channels=3)
    head.center.copy_(torch.tensor([[5.0, -1.0, 2.0]]))
    teacher = [torch.randn(2, 3), torch.randn(2, 3)]
    student = [torch.randn(2, 3) for _ in range(3)]
    loss = head.loss(student, teacher)['loss_dino'].item()
    shifted = DINOHead(out_channels=3)  # centre 0, teacher logits shifted by the same centre
    assert shifted.loss(student, [t - torch.tensor([5.0, -1.0, 2.0]) for t in teacher])[
        'loss_dino'
    ].item() == pytest.approx(loss)


def test_center_update_matches_eq():
    head = DINOHead(out_channels=4, center_momentum=0.9)
    c0 = torch.randn(1, 4)
    head.center.copy_(c0)
    teacher = [torch.randn(3, 4), torch.randn(3, 4)]
    head.loss([torch.randn(3, 4), torch.randn(3, 4)], teacher)
    expected = 0.9 * c0 + 0.1 * torch.cat(teacher).mean(0, keepdim=True)
    torch.testing.assert_close(head.center, expected)


def dino_loss_by_hand(student, teacher, center, teacher_temp, student_temp=0.1):
    """DINO's eq. (main_dino.py DINOLoss.forward): mean over the pairs (i, v != i) of -sum P_t,i log P_s,v."""
    total, pairs = 0.0, 0
    for i, t in enumerate(teacher):
        p_t = torch.softmax((t - center) / teacher_temp, dim=-1)
        for v, s in enumerate(student):
            if v != i:
                total += (-p_t * torch.log_softmax(s / student_temp, dim=-1)).sum(-1).mean()
                pairs += 1
    return total / pairs


def test_center_is_updated_after_the_loss_uses_the_old_one():
    """Two batches: the second loss uses the centre the first batch left (c1 = 0.9 c0 + 0.1 mean(t)), and each loss
    equals DINO's equation under the centre from *before* its own batch, not after."""
    head = DINOHead(out_channels=3, warmup_teacher_temp_epochs=0)
    center = torch.tensor([[0.3, -0.2, 0.0]])  # c0, not uniform (a uniform centre cancels in the softmax)
    head.center.copy_(center)
    batches = [([torch.randn(2, 3), torch.randn(2, 3)], [torch.randn(2, 3) + 2 * k, torch.randn(2, 3)]) for k in (0, 1)]
    for student, teacher in batches:
        loss = head.loss(student, teacher)['loss_dino']
        before = dino_loss_by_hand(student, teacher, center, head.teacher_temp)
        center = 0.9 * center + 0.1 * torch.cat(teacher).mean(0, keepdim=True)
        after = dino_loss_by_hand(student, teacher, center, head.teacher_temp)
        torch.testing.assert_close(loss, before)
        assert not torch.allclose(loss, after)  # the order is visible in these numbers
        torch.testing.assert_close(head.center, center)


@pytest.mark.parametrize('warmup_epochs', [1, 2, 30])
def test_teacher_temperature_schedule_is_dinos(warmup_epochs):
    """DINO main_dino.py: np.concatenate((np.linspace(0.04, 0.07, W), np.ones(epochs - W) * 0.07))."""
    import numpy as np

    epochs = 100
    dino = np.concatenate((np.linspace(0.04, 0.07, warmup_epochs), np.ones(epochs - warmup_epochs) * 0.07))
    head = DINOHead(
        out_channels=3, teacher_temp=0.07, warmup_teacher_temp=0.04, warmup_teacher_temp_epochs=warmup_epochs
    )
    for epoch in range(epochs):
        head.set_epoch(epoch)
        assert head.teacher_temp == pytest.approx(dino[epoch]), epoch
    # with DINO's 30 epochs the final value arrives at epoch 29, the last warm-up epoch
    if warmup_epochs == 30:
        head.set_epoch(29)
        assert head.teacher_temp == pytest.approx(0.07)


def test_teacher_temperature_valid_from_construction():
    assert DINOHead(out_channels=3).teacher_temp == pytest.approx(0.04)
    assert DINOHead(out_channels=3, warmup_teacher_temp_epochs=0).teacher_temp == pytest.approx(0.07)


@pytest.mark.parametrize(
    'kwargs,match',
    [
        (dict(teacher_temp=0), 'teacher_temp must be > 0, got 0'),
        (dict(center_momentum=1.5), 'center_momentum must be in \\[0, 1\\), got 1.5'),
    ],
)
def test_head_bad_config(kwargs, match):
    with pytest.raises(ValueError, match=match):
        DINOHead(out_channels=3, **kwargs)


def test_head_needs_two_global_views():
    with pytest.raises(ValueError, match='>= 2 teacher'):
        DINOHead(out_channels=3).loss([torch.randn(2, 3)] * 2, [torch.randn(2, 3)])


@pytest.mark.parametrize('stride,in_channels,size', [(16, 384, 224), (32, 768, 64), (4, 64, 28)])
def test_decoder_restores_view_shape(stride, in_channels, size):
    decoder = MSTDecoder(in_channels=in_channels, stride=stride)
    out = decoder(torch.randn(2, in_channels, size // stride, size // stride))
    assert out.shape == (2, 3, size, size)


def test_decoder_widths_halve_down_to_min_channels():
    decoder = MSTDecoder(in_channels=384, stride=16, min_channels=32)
    widths = [m.conv.out_channels for m in decoder.decoder if hasattr(m, 'conv')]
    assert widths == [192, 96, 48, 32]


def test_restoration_loss_is_weighted_l1():
    decoder = MSTDecoder(in_channels=8, stride=4, loss_weight=0.5).eval()
    feats, target = torch.randn(2, 8, 2, 2), torch.randn(2, 3, 8, 8)
    expected = 0.5 * (decoder(feats) - target).abs().mean()
    torch.testing.assert_close(decoder.loss(feats, target), expected)


def test_decoder_bad_stride():
    with pytest.raises(ValueError, match='stride must be a power of 2, got 12'):
        MSTDecoder(in_channels=8, stride=12)
