"""MST trains in an mmengine Runner with its hooks and schedules, with and without a DDP wrapper."""

import math
import os
import uuid
from types import SimpleNamespace

import numpy as np
import pytest
import torch
from mmengine.config import ConfigDict
from mmengine.hooks import Hook
from mmengine.runner import Runner
from PIL import Image

TINY_VIT = dict(
    type='MSTViT',
    arch=dict(embed_dims=32, num_layers=2, num_heads=4, feedforward_channels=64),
    img_size=32,
    patch_size=8,
)
TINY_SWIN = dict(
    type='MSTSwinTransformer',
    arch=dict(embed_dims=16, depths=[1, 1], num_heads=[2, 2]),
    img_size=32,
    patch_size=4,
    window_size=4,
    out_indices=(1,),
)


@pytest.fixture(scope='module')
def image_folder(tmp_path_factory):
    """8 random RGB images in an ImageNet-style folder."""
    root = tmp_path_factory.mktemp('imgs')
    rng = np.random.default_rng(0)
    os.makedirs(root / 'train' / 'class_a')
    for i in range(8):
        Image.fromarray(rng.integers(0, 255, (40, 40, 3), dtype=np.uint8)).save(root / 'train' / 'class_a' / f'{i}.png')
    return str(root / 'train')


def runner_cfg(work_dir, data_root, backbone, stride, max_epochs=2):
    return ConfigDict(
        default_scope='mmpretrain',
        experiment_name=f'mst_{uuid.uuid4().hex}',
        work_dir=str(work_dir),
        model=dict(
            type='MST',
            backbone=backbone,
            neck=dict(
                type='MSTNeck',
                in_channels=32,
                out_channels=64,
                hidden_channels=32,
                bottleneck_channels=16,
                norm_last_layer=False,
            ),
            head=dict(type='MSTHead', out_channels=64, warmup_teacher_temp_epochs=2),
            mask_generator=dict(type='AttentionGuidedMaskGenerator', num=2, prob=0.5),
            decoder=dict(type='MSTDecoder', in_channels=32, stride=stride),
            data_preprocessor=dict(
                type='SelfSupDataPreprocessor', mean=[123.675, 116.28, 103.53], std=[58.395, 57.12, 57.375], to_rgb=True
            ),
        ),
        train_dataloader=dict(
            batch_size=4,
            num_workers=0,
            sampler=dict(type='DefaultSampler', shuffle=True),
            collate_fn=dict(type='default_collate'),
            dataset=dict(
                type='CustomDataset',
                data_root=data_root,
                with_label=False,
                pipeline=[
                    dict(type='LoadImageFromFile'),
                    dict(type='MultiCropViews', global_crop_size=32, local_crop_size=16, num_local_views=2),
                    dict(type='PackInputs'),
                ],
            ),
        ),
        optim_wrapper=dict(
            optimizer=dict(type='AdamW', lr=1e-3, weight_decay=0.04),
            clip_grad=dict(max_norm=3.0),
            paramwise_cfg=dict(norm_decay_mult=0.0, bias_decay_mult=0.0, flat_decay_mult=0.0),
        ),
        param_scheduler=[
            dict(type='CosineAnnealingLR', T_max=max_epochs, eta_min=1e-6, by_epoch=True, convert_to_iter_based=True),
            dict(
                type='CosineAnnealingParamScheduler',
                param_name='weight_decay',
                eta_min_ratio=10,
                T_max=max_epochs,
                by_epoch=True,
                convert_to_iter_based=True,
            ),
        ],
        train_cfg=dict(type='EpochBasedTrainLoop', max_epochs=max_epochs),
        custom_hooks=[dict(type='TeacherTempHook'), dict(type='FreezeLastLayerHook', freeze_epochs=1)],
        default_hooks=dict(
            checkpoint=dict(type='CheckpointHook', interval=1), logger=dict(type='LoggerHook', interval=1)
        ),
        randomness=dict(seed=0),
        log_level='WARNING',
    )


@pytest.mark.parametrize('backbone,stride', [(TINY_VIT, 8), (TINY_SWIN, 8)], ids=['vit', 'swin'])
def test_runner_trains_with_hooks_and_schedules(tmp_path, image_folder, backbone, stride):
    runner = Runner.from_cfg(runner_cfg(tmp_path, image_folder, backbone, stride))
    model = runner.model
    last_layer = model.neck.last_layer.parametrizations.weight.original1
    snapshots = {}

    class Probe(Hook):
        def after_train_epoch(self, runner):
            snapshots[runner.epoch] = dict(
                last_layer=last_layer.detach().clone(),
                temp=model.head.teacher_temp,
                backbone=model.backbone.patch_embed.projection.weight.detach().clone(),
            )

    runner.register_hook(Probe(), priority='LOWEST')
    initial = last_layer.detach().clone()
    initial_backbone = model.backbone.patch_embed.projection.weight.detach().clone()
    runner.train()

    losses = runner.message_hub.get_scalar('train/loss').data[0]
    assert len(losses) == 4 and np.isfinite(losses).all()
    # (runner.epoch counts from 0 inside after_train_epoch)
    # epoch 0: last layer frozen, everything else learns; epoch 1: the last layer learns too
    assert torch.equal(snapshots[0]['last_layer'], initial)
    assert not torch.equal(snapshots[0]['backbone'], initial_backbone)
    assert not torch.equal(snapshots[1]['last_layer'], initial)
    # teacher temperature warm-up over 2 epochs, DINO's np.linspace(0.04, 0.07, 2): 0.04, then 0.07
    assert snapshots[0]['temp'] == pytest.approx(0.04) and snapshots[1]['temp'] == pytest.approx(0.07)
    # weight decay cosine 0.04 -> 0.4 on decayed groups only; biases and norms stay at 0
    wd_scheduler = runner.param_schedulers[1]
    k, T = wd_scheduler.last_step, wd_scheduler.T_max
    expected = 0.4 + (0.04 - 0.4) * (1 + math.cos(math.pi * k / T)) / 2
    decays = {round(g['weight_decay'], 9) for g in runner.optim_wrapper.param_groups}
    assert decays == {0.0, round(expected, 9)} and expected > 0.2
    assert os.path.exists(tmp_path / 'epoch_2.pth')


@pytest.fixture
def ddp_model(free_port):
    """An MST wrapped in MMDistributedDataParallel, in a one-process gloo group."""
    import torch.distributed as dist
    from mmengine.model import MMDistributedDataParallel
    from mmpretrain.registry import MODELS

    cfg = runner_cfg('/tmp', '/tmp', TINY_VIT, 8).model
    model = MODELS.build(cfg)
    dist.init_process_group('gloo', init_method=f'tcp://127.0.0.1:{free_port()}', rank=0, world_size=1)
    try:
        yield MMDistributedDataParallel(module=model)
    finally:
        dist.destroy_process_group()


def test_hooks_work_through_ddp_wrapper(ddp_model):
    from mmmst.engine import FreezeLastLayerHook, TeacherTempHook

    optimizer = torch.optim.AdamW([p for p in ddp_model.parameters() if p.requires_grad], lr=0.1)
    from mmengine.runner import EpochBasedTrainLoop

    loop = EpochBasedTrainLoop.__new__(EpochBasedTrainLoop)  # only its type is looked at
    runner = SimpleNamespace(
        model=ddp_model, epoch=15, optim_wrapper=SimpleNamespace(optimizer=optimizer), train_loop=loop
    )
    TeacherTempHook().before_train_epoch(runner)
    assert ddp_model.module.head.teacher_temp == pytest.approx(ddp_model.module.head.teacher_temp_at(15))

    hook = FreezeLastLayerHook(freeze_epochs=20)
    hook.before_train(runner)
    last_layer = ddp_model.module.neck.last_layer.parametrizations.weight.original1
    before = last_layer.detach().clone()
    for p in ddp_model.parameters():
        if p.requires_grad:
            p.grad = torch.ones_like(p)
    optimizer.step()
    assert torch.equal(last_layer, before)
    runner.epoch = 20
    last_layer.grad = torch.ones_like(last_layer)
    optimizer.step()
    assert not torch.equal(last_layer, before)


def test_knn_monitor_hook_logs_teacher_knn_top1(tmp_path, image_folder):
    """The hook's figure equals k-NN top-1 recomputed from the final teacher, and lands in scalars.json."""
    import json

    from mmmst.evaluation import dataloader_batches, extract_features, knn_top1

    labelled = dict(
        batch_size=4,
        num_workers=0,
        sampler=dict(type='DefaultSampler', shuffle=False),
        collate_fn=dict(type='default_collate'),
        dataset=dict(
            type='CustomDataset',
            data_root=image_folder,
            pipeline=[dict(type='LoadImageFromFile'), dict(type='Resize', scale=(32, 32)), dict(type='PackInputs')],
        ),
    )
    cfg = runner_cfg(tmp_path, image_folder, TINY_VIT, 8, max_epochs=1)
    cfg.custom_hooks.append(
        dict(type='KNNMonitorHook', bank_dataloader=labelled, query_dataloader=labelled, num_classes=2, k=3)
    )
    runner = Runner.from_cfg(cfg)
    runner.train()
    logged = runner.message_hub.get_scalar('train/knn_top1').current()

    model = runner.model.eval()
    loader = Runner.build_dataloader(labelled)
    feats, labels = extract_features(model.extract_feat, dataloader_batches(model, loader), progress=False)
    assert logged == pytest.approx(knn_top1(feats, labels, feats, labels, num_classes=2, k=3))
    scalars = [json.loads(line) for line in open(next(tmp_path.glob('*/vis_data/scalars.json')))]
    assert any('knn_top1' in row for row in scalars)


@pytest.mark.parametrize('hook', [dict(type='TeacherTempHook'), dict(type='FreezeLastLayerHook', freeze_epochs=1)])
def test_epoch_hooks_refuse_an_iteration_loop_by_name(hook, image_folder, tmp_path):
    """Under IterBasedTrainLoop the epoch never moves: the last layer would stay frozen, the temperature cold."""
    cfg = runner_cfg(tmp_path, image_folder, TINY_VIT, 8)
    cfg.train_cfg = dict(type='IterBasedTrainLoop', max_iters=2)
    cfg.param_scheduler = []
    cfg.custom_hooks = [hook]
    runner = Runner.from_cfg(cfg)
    with pytest.raises(
        TypeError, match=f'{hook["type"]} follows an epoch schedule, but the train loop is IterBasedTrainLoop'
    ):
        runner.train()
