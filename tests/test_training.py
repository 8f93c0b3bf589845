"""MST trains in an mmengine Runner with its hooks and schedules, with and without a DDP wrapper."""

import copy
import json
import math
import os
import os.path as osp
import re
import uuid
from types import SimpleNamespace

import numpy as np
import pytest
import torch
from mmengine.config import ConfigDict
from mmengine.hooks import Hook
from mmengine.runner import Runner
from mmpretrain.registry import MODELS
from PIL import Image

from tests.helpers import reference_knn_of_loaders

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
                type='DINONeck',
                in_channels=32,
                out_channels=64,
                hidden_channels=32,
                bottleneck_channels=16,
                norm_last_layer=False,
            ),
            head=dict(type='DINOHead', out_channels=64, warmup_teacher_temp_epochs=2),
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


@pytest.fixture(scope='module')
def two_class_folder(tmp_path_factory):
    """Labelled images in two class folders, reddish and bluish noise: ``bank/`` (7 + 6: an odd count, so that two
    processes get a padded shard) and ``query/`` (5 + 4, the colour barely there, so that k-NN errs on some)."""
    root = tmp_path_factory.mktemp('two_classes')
    rng = np.random.default_rng(1)
    for split, counts, boost in (('bank', (7, 6), 120), ('query', (5, 4), 12)):
        for name, count, channel in (('class_a', counts[0], 0), ('class_b', counts[1], 2)):
            os.makedirs(root / split / name)
            for i in range(count):
                image = rng.integers(0, 120, (40, 40, 3), dtype=np.uint8)
                image[..., channel] += boost
                Image.fromarray(image).save(root / split / name / f'{i}.png')
    return str(root)


def labelled_loader(folder):
    return dict(
        batch_size=4,
        num_workers=0,
        sampler=dict(type='DefaultSampler', shuffle=False),
        collate_fn=dict(type='default_collate'),
        dataset=dict(
            type='CustomDataset',
            data_root=folder,
            pipeline=[dict(type='LoadImageFromFile'), dict(type='Resize', scale=(32, 32)), dict(type='PackInputs')],
        ),
    )


def test_knn_monitor_hook_logs_teacher_knn_top1(tmp_path, image_folder, two_class_folder):
    bank, query = (labelled_loader(osp.join(two_class_folder, split)) for split in ('bank', 'query'))
    cfg = runner_cfg(tmp_path, image_folder, TINY_VIT, 8, max_epochs=1)
    cfg.custom_hooks.append(
        dict(type='KNNMonitorHook', bank_dataloader=bank, query_dataloader=query, num_classes=2, k=3)
    )
    cfg.log_level = 'INFO'  # the hook's line goes to the log file
    runner = Runner.from_cfg(cfg)
    runner.train()
    logged = runner.message_hub.get_scalar('train/knn_top1').current()
    # the independent reference (numpy k-NN on features taken straight from the teacher) on the trained model
    expected = reference_knn_of_loaders(bank, query, runner.model.eval(), num_classes=2, k=3)
    assert logged == pytest.approx(expected)
    assert 0 < expected < 100  # a figure that two classes and an untrained-ish network can get wrong
    scalars = [json.loads(line) for line in open(next(tmp_path.glob('*/vis_data/scalars.json')))]
    assert [row['knn_top1'] for row in scalars if 'knn_top1' in row] == [pytest.approx(logged)]
    # the log names the epoch that finished, counted from 1 as mmengine's own lines count it
    log = open(next(tmp_path.glob('*/*.log'))).read()
    assert f'Epoch 1: k-NN top-1 (teacher, k=3) = {logged:.2f}' in log


def _knn_hook_worker(rank, init_file, folder, out_file):
    from types import SimpleNamespace

    from mmengine.registry import init_default_scope
    from torch import distributed as dist

    from mmmst.engine.hooks import KNNMonitorHook

    torch.set_num_threads(1)  # a forked child must not reuse the parent's OpenMP pool (it hangs on it)
    init_default_scope('mmpretrain')
    dist.init_process_group('gloo', init_method=f'file://{init_file}', rank=rank, world_size=2)
    torch.manual_seed(0)  # the same network on both processes
    model = MODELS.build(runner_cfg('.', folder, TINY_VIT, 8).model)
    model.init_weights()
    bank, query = (labelled_loader(osp.join(folder, split)) for split in ('bank', 'query'))
    hook = KNNMonitorHook(bank_dataloader=bank, query_dataloader=query, num_classes=2, k=3)
    torch.save(hook.evaluate(SimpleNamespace(seed=0, model=model)), f'{out_file}.{rank}')
    dist.barrier()
    dist.destroy_process_group()


def test_knn_monitor_hook_on_two_processes_equals_one(tmp_path, two_class_folder):
    """Each process encodes its shard (the second padded); the figure is the whole set's, on both processes."""
    import torch.multiprocessing as mp

    out = tmp_path / 'top1'
    mp.start_processes(_knn_hook_worker, args=(str(tmp_path / 'init'), two_class_folder, str(out)), nprocs=2,
                       start_method='fork')  # fmt: skip
    figures = [torch.load(f'{out}.{rank}') for rank in range(2)]
    torch.manual_seed(0)
    model = MODELS.build(runner_cfg('.', two_class_folder, TINY_VIT, 8).model)
    model.init_weights()
    bank, query = (labelled_loader(osp.join(two_class_folder, split)) for split in ('bank', 'query'))
    expected = reference_knn_of_loaders(bank, query, model.eval(), num_classes=2, k=3)
    assert figures == [pytest.approx(expected)] * 2


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


def test_the_knn_monitor_at_start_measures_the_network_before_its_first_iteration(tmp_path, two_class_folder):
    """``at_start=True``: the curve's first point is the k-NN of the weights the run starts from (a continued
    backbone's), at step 0; then one point per epoch."""
    cfg = runner_cfg(tmp_path, two_class_folder, TINY_VIT, 8)
    bank, query = (labelled_loader(osp.join(two_class_folder, split)) for split in ('bank', 'query'))
    cfg.custom_hooks = [dict(type='KNNMonitorHook', bank_dataloader=bank, query_dataloader=query, num_classes=2, k=3,
                             at_start=True)]  # fmt: skip
    runner = Runner.from_cfg(cfg)
    runner.model.init_weights()
    expected = reference_knn_of_loaders(bank, query, copy.deepcopy(runner.model).eval(), num_classes=2, k=3)
    runner.train()
    curve = runner.message_hub.get_scalar('train/knn_top1').data[0].tolist()
    assert len(curve) == 1 + cfg.train_cfg.max_epochs
    assert curve[0] == pytest.approx(expected)


@pytest.mark.parametrize(
    'kwargs, message',
    [
        (dict(k=0), 'KNNMonitorHook: k must be >= 1, got 0'),
        (dict(interval=0), 'KNNMonitorHook: interval must be >= 1, got 0'),
        (dict(temperature=0), 'KNNMonitorHook: temperature must be > 0, got 0'),
    ],
)
def test_knn_monitor_settings_are_refused_by_name(kwargs, message):
    from mmmst.engine.hooks import KNNMonitorHook

    with pytest.raises(ValueError, match=re.escape(message)):
        KNNMonitorHook(bank_dataloader={}, query_dataloader={}, num_classes=2, **kwargs)
