"""The MST algorithm: teacher EMA, masking from the teacher's attention, losses, gradients, bad configs."""

import math

import pytest
import torch
from mmengine.optim import build_optim_wrapper
from mmpretrain.registry import MODELS

TINY_VIT = dict(
    type='MSTViT',
    arch=dict(embed_dims=32, num_layers=2, num_heads=4, feedforward_channels=64),
    img_size=32,
    patch_size=8,
    drop_path_rate=0.1,
)
TINY_SWIN = dict(
    type='MSTSwinTransformer',
    arch=dict(embed_dims=16, depths=[1, 1], num_heads=[2, 2]),
    img_size=32,
    patch_size=4,
    window_size=4,
    out_indices=(1,),
)


def mst_cfg(backbone=TINY_VIT, width=32, stride=8, **kwargs):
    cfg = dict(
        type='MST',
        backbone=backbone,
        neck=dict(type='DINONeck', in_channels=width, out_channels=64, hidden_channels=32, bottleneck_channels=16),
        head=dict(type='DINOHead', out_channels=64),
        mask_generator=dict(type='AttentionGuidedMaskGenerator', num=2, prob=0.5),
        decoder=dict(type='MSTDecoder', in_channels=width, stride=stride),
        data_preprocessor=dict(type='SelfSupDataPreprocessor', mean=[0, 0, 0], std=[1, 1, 1]),
    )
    cfg.update(kwargs)
    return cfg


def build(**kwargs):
    model = MODELS.build(mst_cfg(**kwargs))
    model.init_weights()
    return model


def views(batch=2, num_local=2):
    return [torch.randn(batch, 3, 32, 32), torch.randn(batch, 3, 32, 32)] + [
        torch.randn(batch, 3, 16, 16) for _ in range(num_local)
    ]


def test_loss_returns_dino_and_restoration(max_iters):
    max_iters(100)
    losses = build().loss(views(), None)
    assert {k for k in losses if 'loss' in k} == {'loss_dino', 'loss_restore'}
    assert all(torch.isfinite(v) for v in losses.values())


def test_without_mask_generator_and_decoder_it_is_dino(max_iters):
    max_iters(100)
    model = build(mask_generator=None, decoder=None)
    assert {k for k in model.loss(views(), None) if 'loss' in k} == {'loss_dino'}
    # nothing masks, so there is no mask token (a parameter without gradient would stop DDP)
    assert model.backbone.mask_token is None and model.teacher.module.backbone.mask_token is None


def test_masking_mst_owns_a_mask_token_and_refuses_a_contradiction():
    assert build().backbone.mask_token is not None
    with pytest.raises(ValueError, match='with_mask_token=False contradicts'):
        build(backbone=dict(TINY_VIT, with_mask_token=False))


def test_dino_mode_checkpoint_with_a_mask_token_still_loads_strictly():
    """Checkpoints written before the mask token became optional hold one in student and teacher."""
    masking = build()
    state = masking.state_dict()
    assert 'backbone.mask_token' in state and 'teacher.module.backbone.mask_token' in state
    dino = build(mask_generator=None, decoder=None)
    state = {k: v for k, v in state.items() if not k.startswith('decoder.')}
    dino.load_state_dict(state, strict=True)
    torch.testing.assert_close(dino.backbone.pos_embed, masking.backbone.pos_embed)


def test_student_masks_come_from_teacher_attention(max_iters, monkeypatch):
    """The mask handed to the student is the generator's output on the teacher's CLS attention."""
    max_iters(100)
    model = build(mask_generator=dict(type='AttentionGuidedMaskGenerator', num=4, prob=1.0))
    seen = {}
    teacher_encode, student_encode = model.teacher.module.backbone.encode, model.backbone.encode

    def spy_teacher(x, mask=None, return_cls_attention=False):
        out = teacher_encode(x, mask, return_cls_attention)
        seen.update(attn=out.cls_attention, teacher_input=x, teacher_mask=mask)
        return out

    def spy_student(x, mask=None, return_cls_attention=False):
        seen.setdefault('masks', []).append(mask)
        return student_encode(x, mask, return_cls_attention)

    monkeypatch.setattr(model.teacher.module.backbone, 'encode', spy_teacher)
    monkeypatch.setattr(model.backbone, 'encode', spy_student)
    batch = views(batch=3)
    model.loss(batch, None)
    # the teacher sees the global views whole: no mask, the very images
    assert seen['teacher_mask'] is None and torch.equal(seen['teacher_input'], torch.cat(batch[:2]))
    global_mask, local_mask = seen['masks']
    assert local_mask is None  # local views are never masked
    assert global_mask.shape == (6, 16)  # 2 global views x 3 images, 16 patches
    expected = torch.zeros_like(global_mask).scatter_(1, seen['attn'].argsort(1)[:, :4], True)
    assert torch.equal(global_mask, expected)  # prob 1: exactly the 16 // 4 lowest-attention patches


def test_restoration_targets_the_unmasked_global_views(max_iters, monkeypatch):
    """Eq. 6-7: the decoder restores the whole global views (not the masked tokens' images) from the student's
    patch tokens of the masked views."""
    max_iters(100)
    model = build(mask_generator=dict(type='AttentionGuidedMaskGenerator', num=2, prob=1.0))
    seen, decoder_loss, student_encode = {}, model.decoder.loss, model.backbone.encode

    def spy_student(x, mask=None, return_cls_attention=False):
        out = student_encode(x, mask, return_cls_attention)
        if mask is not None:
            seen.update(patch_map=out.patch_map, mask=mask)
        return out

    def spy_loss(patch_map, target):
        seen.update(decoded=patch_map, target=target)
        return decoder_loss(patch_map, target)

    monkeypatch.setattr(model.backbone, 'encode', spy_student)
    monkeypatch.setattr(model.decoder, 'loss', spy_loss)
    batch = views(batch=2)
    model.loss(batch, None)
    assert seen['mask'].any()  # the student's views were masked ...
    assert seen['decoded'] is seen['patch_map']  # ... the decoder reads their patch tokens ...
    assert torch.equal(seen['target'], torch.cat(batch[:2]))  # ... and restores the unmasked images


def test_mask_token_gets_gradient_teacher_none(max_iters):
    max_iters(100)
    model = build(mask_generator=dict(type='AttentionGuidedMaskGenerator', num=2, prob=1.0))
    losses = model.loss(views(), None)
    (losses['loss_dino'] + losses['loss_restore']).backward()
    assert model.backbone.mask_token.grad is not None and model.backbone.mask_token.grad.abs().sum() > 0
    assert all(p.grad is None and not p.requires_grad for p in model.teacher.parameters())
    assert model.decoder.decoder[0].conv.weight.grad.abs().sum() > 0


@pytest.mark.parametrize('backbone,width,stride', [(TINY_VIT, 32, 8), (TINY_SWIN, 32, 8)])
def test_teacher_is_ema_of_student(max_iters, backbone, width, stride):
    max_iters(10)
    model = build(backbone=backbone, width=width, stride=stride, teacher_momentum=0.9)
    optim = build_optim_wrapper(model, dict(optimizer=dict(type='SGD', lr=0.5)))
    data = dict(inputs=views(), data_samples=None)
    model.train_step(data, optim)  # step 0: the teacher copies the student, then the student moves
    teacher_before = {k: v.clone() for k, v in model.teacher.module.named_parameters()}
    student = dict(model._student().named_parameters())
    student_before = {k: v.detach().clone() for k, v in student.items()}
    model.train_step(data, optim)  # step 1: EMA with the student after step 0
    k, K = 1, 10
    m = 1 - (1 - 0.9) * (math.cos(math.pi * k / K) + 1) / 2  # cosine 0.9 -> 1
    changed = 0
    for name, param in model.teacher.module.named_parameters():
        expected = m * teacher_before[name] + (1 - m) * student_before[name]
        torch.testing.assert_close(param, expected, msg=name)
        changed += int(not torch.equal(teacher_before[name], student_before[name]))
    assert changed > 0  # the check compared different tensors


def test_teacher_runs_without_drop_path(max_iters):
    max_iters(100)
    model = build().train()
    assert model.backbone.training and not model.teacher.training
    assert not any(m.training for m in model.teacher.modules())


def test_extract_feat_uses_teacher(max_iters):
    model = build().eval()
    x = torch.randn(2, 3, 32, 32)
    with torch.no_grad():
        model.teacher.module.backbone.cls_token.add_(1.0)
        torch.testing.assert_close(model(x, mode='tensor')[0], model.teacher.module.backbone(x)[0])
        assert not torch.allclose(model(x, mode='tensor')[0], model.backbone(x)[0])


@pytest.mark.parametrize('backbone,width,stride', [(TINY_VIT, 32, 8), (TINY_SWIN, 32, 8)], ids=['vit', 'swin'])
def test_loss_decreases_on_a_fixed_batch(max_iters, backbone, width, stride):
    max_iters(40)
    torch.manual_seed(0)
    model = build(backbone=backbone, width=width, stride=stride).train()
    optim = build_optim_wrapper(model, dict(optimizer=dict(type='AdamW', lr=1e-3)))
    data = dict(inputs=views(batch=4), data_samples=None)
    # Start the centre at its steady state for this batch. From a zero centre the DINO loss first rises while
    # the centre catches up with the teacher's mean (the sharpened targets spread out), which is expected.
    with torch.no_grad():
        teacher_logits = model.neck(model.backbone.encode(torch.cat(data['inputs'][:2])).cls_token)
        for _ in range(60):
            model.head.update_center(teacher_logits)
    totals = []
    for _ in range(40):
        log = model.train_step(data, optim)
        totals.append(float(log['loss']))
    assert all(math.isfinite(t) for t in totals)
    assert sum(totals[-5:]) / 5 < 0.9 * sum(totals[:5]) / 5


@pytest.mark.parametrize(
    'kwargs,match',
    [
        (
            dict(decoder=dict(type='MSTDecoder', in_channels=48, stride=8)),
            'decoder.in_channels=48 does not match the backbone width 32',
        ),
        (
            dict(decoder=dict(type='MSTDecoder', in_channels=32, stride=16)),
            'decoder.stride=16 does not match the backbone stride 8',
        ),
        (
            dict(neck=dict(type='DINONeck', in_channels=16, out_channels=64)),
            'neck.in_channels=16 does not match the backbone width 32',
        ),
        (dict(head=dict(type='DINOHead', out_channels=10)), 'head.out_channels=10 does not match neck.out_channels=64'),
        (dict(mask_generator=dict(type='AttentionGuidedMaskGenerator', num=0)), 'num must be an int >= 1, got 0'),
    ],
)
def test_bad_config_raises_at_build_time(kwargs, match):
    with pytest.raises(ValueError, match=match):
        MODELS.build(mst_cfg(**kwargs))


MONITORS = {'teacher_entropy', 'kl_teacher_student', 'teacher_feature_std', 'mask_ratio', 'center_norm'}


def test_collapse_monitors_on_a_healthy_batch(max_iters):
    """Each monitor against a computation of its own, from the teacher run again by hand on the unmasked views."""
    max_iters(100)
    model = build(mask_generator=dict(type='AttentionGuidedMaskGenerator', num=4, prob=1.0))
    model.head.center.normal_()  # a centre that matters
    center_before, batch = model.head.center.clone(), views(batch=4)
    losses = model.loss(batch, None)
    assert MONITORS <= set(losses) and not any(v.requires_grad for k, v in losses.items() if k in MONITORS)
    with torch.no_grad():  # the teacher as the loss left it (its EMA step comes first in the loss)
        cls = model.teacher.module.backbone(torch.cat(batch[:2]))[-1]  # (2 * 4, C) CLS tokens, unmasked views
        logits = model.teacher.module.neck(cls)
    log_p = torch.log_softmax((logits - center_before) / model.head.teacher_temp, dim=-1)
    entropy = -(log_p.exp() * log_p).sum(-1).mean()
    torch.testing.assert_close(losses['teacher_entropy'], entropy, rtol=1e-5, atol=1e-6)
    assert losses['teacher_entropy'] < math.log(64) - 1e-3  # a centred, sharpened teacher is not uniform
    torch.testing.assert_close(
        losses['kl_teacher_student'], losses['loss_dino'].detach() - entropy, rtol=1e-5, atol=1e-6
    )
    assert losses['kl_teacher_student'] > 1e-4  # an untrained student does not match its teacher
    features = torch.nn.functional.normalize(cls, dim=-1)
    spread = torch.stack([features[:4].std(0).mean(), features[4:].std(0).mean()]).mean()
    torch.testing.assert_close(losses['teacher_feature_std'], spread)
    assert losses['mask_ratio'] == pytest.approx(0.25)  # prob 1: exactly N // num of N patches
    center_after = 0.9 * center_before + 0.1 * logits.mean(0, keepdim=True)  # eq. of the centre, m = 0.9
    torch.testing.assert_close(losses['center_norm'], center_after.norm(), rtol=1e-5, atol=1e-6)


def test_collapse_monitors_on_a_collapsed_batch(max_iters):
    """Every image the same: zero feature spread. Uniform collapse: H = log K and, with a student equal to the
    teacher, KL = 0. One-hot collapse: H = 0 and a uniform student far from it."""
    max_iters(100)
    model = build()
    same = [v[:1].expand_as(v).contiguous() for v in views(batch=4)]
    assert model.loss(same, None)['teacher_feature_std'] < 1e-5
    head = model.head
    head.center.zero_()
    uniform = [torch.zeros(4, 64), torch.zeros(4, 64)]
    collapsed = head.loss([torch.zeros(4, 64)] * 3, uniform)
    torch.testing.assert_close(collapsed['teacher_entropy'], torch.tensor(math.log(64)))
    torch.testing.assert_close(collapsed['kl_teacher_student'], torch.tensor(0.0), atol=1e-6, rtol=0)
    head.center.zero_()
    one_hot = [torch.full((4, 64), -1.0).index_fill_(1, torch.tensor([3]), 1.0)] * 2
    peaked = head.loss([torch.zeros(4, 64)] * 3, one_hot)
    assert peaked['teacher_entropy'] < 1e-6
    # a uniform student against a one-hot teacher: KL = log K - H(P_t) = log K
    torch.testing.assert_close(peaked['kl_teacher_student'], torch.tensor(math.log(64)), rtol=1e-5, atol=1e-5)
    dino = build(mask_generator=None, decoder=None)
    assert dino.loss(views(), None)['mask_ratio'] == 0


def test_collapse_monitors_are_logged_but_not_optimised(max_iters):
    max_iters(100)
    model = build()
    loss, log_vars = model.parse_losses(model.loss(views(), None))
    assert MONITORS <= set(log_vars)
    torch.testing.assert_close(loss, log_vars['loss_dino'] + log_vars['loss_restore'])


@pytest.mark.parametrize(
    'generator',
    [
        dict(type='HighAttentionMaskGenerator', ratio=0.25),
        dict(type='HighAttentionMaskGenerator', ratio=(0.1, 0.5), hint=0.1),
        dict(type='BlockMaskGenerator', ratio=0.25, min_block=2),
        dict(type='RandomMaskGenerator', prob=(0.1, 0.3), image_prob=0.5),
    ],
)
def test_every_mask_strategy_trains_the_mask_token(generator, max_iters):
    max_iters(100)
    model = build(mask_generator=generator)
    losses = model.loss(views(batch=4), None)
    assert 0 < losses['mask_ratio'] <= 0.5
    (losses['loss_dino'] + losses['loss_restore']).backward()
    assert model.backbone.mask_token.grad.abs().sum() > 0
