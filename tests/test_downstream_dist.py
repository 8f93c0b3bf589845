"""What users run downstream, on 2 gloo processes: the launcher trains from an MST checkpoint, the test launcher
evaluates the result with only the evaluation data on disk.

For each of the four mmdet / mmseg configs and the DeiT-S linear probe, the real config is shrunk (tiny images in
the exact COCO / Cityscapes / ImageNet on-disk layouts, batch 1 per process, no workers, 2 iterations, a constant
lr instead of warm-ups sized for 80k iterations, no drop path, Mask R-CNN scores kept from 0, checkpoints without
the optimizer state), dumped to a file and run through ``tools/benchmarks/<codebase>/dist_train.sh`` (or
``tools/dist_train.sh``) with 2 processes, then through the matching ``dist_test.sh`` after the training data has
been deleted. A hook saves each process's model right after initialisation. DDP runs with
``find_unused_parameters=False`` (the configs' default), so a trainable parameter without gradient stops the run
at its second iteration.
"""

import json
import os
import os.path as osp
import shutil
import subprocess
import sys

import numpy as np
import pytest
import torch
from mmengine.config import Config
from PIL import Image

ROOT = osp.dirname(osp.dirname(osp.abspath(__file__)))
PY = sys.executable
DET = 'configs/mst/benchmarks/mmdetection'
SEG = 'configs/mst/benchmarks/mmsegmentation'
PROBE = 'configs/mst/benchmarks/deit-small-p16_linear-8xb128-coslr-100e_in1k.py'

SNAPSHOT_HOOK = '''
"""Saves each process's model right after the Runner initialised the weights (before_train)."""
import os

import torch
from mmengine.hooks import Hook
from mmengine.model import is_model_wrapper
from mmengine.registry import HOOKS


@HOOKS.register_module()
class BackboneSnapshotHook(Hook):
    def __init__(self, out_dir):
        self.out_dir = out_dir

    def before_train(self, runner):
        model = runner.model.module if is_model_wrapper(runner.model) else runner.model
        torch.save(model.state_dict(), os.path.join(self.out_dir, f'init_rank{runner.rank}.pth'))
'''


def run(cmd, helper_dir, port):
    pythonpath = os.pathsep.join(p for p in (ROOT, str(helper_dir), os.environ.get('PYTHONPATH')) if p)
    env = dict(
        os.environ,
        PYTHONPATH=pythonpath,
        PYTHON=PY,
        OMP_NUM_THREADS='1',
        PORT=port,
        CUDA_VISIBLE_DEVICES='',
    )
    result = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=900, input='')
    assert result.returncode == 0, f'{" ".join(cmd)}\n{result.stdout[-4000:]}\n{result.stderr[-6000:]}'
    return result.stdout + result.stderr


@pytest.fixture
def helper_dir(tmp_path):
    folder = tmp_path / 'helpers'
    folder.mkdir()
    (folder / 'backbone_snapshot.py').write_text(SNAPSHOT_HOOK)
    return folder


def save_image(path, height, width, rng):
    Image.fromarray(rng.integers(0, 255, (height, width, 3), dtype=np.uint8)).save(path)


def make_coco(root):
    """4 train + 2 val images (128 x 96) with a polygon each, COCO json; returns the train parts."""
    rng = np.random.default_rng(0)
    os.makedirs(root / 'annotations')
    for split, n in (('train2017', 4), ('val2017', 2)):
        os.makedirs(root / split)
        images, annotations = [], []
        for i in range(n):
            save_image(root / split / f'{i:012d}.jpg', 96, 128, rng)
            images.append(dict(id=i + 1, file_name=f'{i:012d}.jpg', height=96, width=128))
            x, y, w, h = 20 + 10 * i, 15, 60, 50
            polygon = [x, y, x + w, y, x + w / 2, y + h]
            annotations.append(
                dict(id=i + 1, image_id=i + 1, category_id=1, iscrowd=0, area=w * h / 2, bbox=[x, y, w, h],
                     segmentation=[polygon])
            )  # fmt: skip
        with open(root / 'annotations' / f'instances_{split}.json', 'w') as f:
            json.dump(dict(images=images, annotations=annotations, categories=[dict(id=1, name='person')]), f)
    return [root / 'train2017', root / 'annotations' / 'instances_train2017.json']


def make_cityscapes(root):
    """leftImg8bit/{train,val}/aachen/*_leftImg8bit.png + gtFine/.../*_gtFine_labelTrainIds.png (4 + 2 images)."""
    rng = np.random.default_rng(0)
    for split, n in (('train', 4), ('val', 2)):
        for folder in ('leftImg8bit', 'gtFine'):
            os.makedirs(root / folder / split / 'aachen')
        for i in range(n):
            stem = f'aachen_{i:06d}_000019'
            save_image(root / 'leftImg8bit' / split / 'aachen' / f'{stem}_leftImg8bit.png', 128, 256, rng)
            labels = np.zeros((128, 256), dtype=np.uint8)
            labels[:, 128:] = 13  # car
            labels[:10] = 255  # ignore
            Image.fromarray(labels).save(root / 'gtFine' / split / 'aachen' / f'{stem}_gtFine_labelTrainIds.png')
    return [root / 'leftImg8bit' / 'train', root / 'gtFine' / 'train']


def make_imagenet(root):
    """ImageNet's layout: train/<wnid>/*.JPEG, val/*.JPEG, meta/{train,val}.txt (4 train + 2 val images)."""
    rng = np.random.default_rng(0)
    os.makedirs(root / 'meta')
    os.makedirs(root / 'val')
    lines = []
    for label, wnid in enumerate(('n01440764', 'n01443537')):
        os.makedirs(root / 'train' / wnid)
        for i in range(2):
            save_image(root / 'train' / wnid / f'{wnid}_{i}.JPEG', 80, 96, rng)
            lines.append(f'{wnid}/{wnid}_{i}.JPEG {label}')
    (root / 'meta' / 'train.txt').write_text('\n'.join(lines) + '\n')
    for i in range(2):
        save_image(root / 'val' / f'ILSVRC2012_val_{i + 1:08d}.JPEG', 80, 96, rng)
    (root / 'meta' / 'val.txt').write_text('ILSVRC2012_val_00000001.JPEG 0\nILSVRC2012_val_00000002.JPEG 1\n')
    return [root / 'train', root / 'meta' / 'train.txt']


def set_pipeline_sizes(pipeline, scale, crop=None):
    for t in pipeline:
        if t['type'] in ('Resize', 'RandomResize'):
            t['scale'] = scale
            t.pop('ratio_range', None) if t['type'] == 'Resize' else None
        if t['type'] == 'RandomCrop' and crop is not None:
            t['crop_size'] = crop
        if t['type'] == 'RandomResizedCrop':
            t['scale'] = crop
        if t['type'] == 'ResizeEdge':
            t['scale'] = scale
        if t['type'] == 'CenterCrop':
            t['crop_size'] = crop


def shrink(config, work_dir, helper_dir, data_root):
    """The real config with tiny sizes, 2 iterations, a constant lr and the snapshot hook."""
    cfg = Config.fromfile(osp.join(ROOT, config))
    cfg.work_dir = str(work_dir)
    cfg.custom_imports = dict(imports=['mmmst', 'backbone_snapshot'], allow_failed_imports=False)
    cfg.custom_hooks = list(cfg.get('custom_hooks') or []) + [dict(type='BackboneSnapshotHook', out_dir=str(work_dir))]
    cfg.param_scheduler = []
    if 'drop_path_rate' in cfg.model.backbone:  # 2 iterations: stochastic depth could skip a block in both
        cfg.model.backbone.drop_path_rate = 0.0
    for name in ('train_dataloader', 'val_dataloader', 'test_dataloader'):
        cfg[name].update(batch_size=1, num_workers=0, persistent_workers=False)
        cfg[name].dataset.data_root = str(data_root)
    cfg.default_hooks.logger.interval = 1
    cfg.randomness = dict(seed=0)
    return cfg


def weights_only_checkpoints(cfg):
    """The test reads and evaluates the weights only: the optimizer's moments (twice the weights: hundreds of MB
    for these networks) are not written."""
    cfg.default_hooks.checkpoint.save_optimizer = False


def shrink_mask_rcnn(config, work_dir, helper_dir, data_root):
    cfg = shrink(config, work_dir, helper_dir, data_root)
    for name in ('train_dataloader', 'val_dataloader', 'test_dataloader'):
        set_pipeline_sizes(cfg[name].dataset.pipeline, (128, 96))
        cfg[name].dataset.metainfo = dict(classes=('person',))
    for name in ('val_evaluator', 'test_evaluator'):
        cfg[name].ann_file = osp.join(data_root, 'annotations/instances_val2017.json')
    cfg.model.roi_head.bbox_head.num_classes = 1
    cfg.model.roi_head.mask_head.num_classes = 1
    # 2 iterations leave every score below the 0.05 threshold; mmdet then logs "results ... empty" and no metric
    cfg.model.test_cfg.rcnn.score_thr = 0.0
    cfg.train_cfg = dict(type='EpochBasedTrainLoop', max_epochs=1, val_interval=1)
    cfg.default_hooks.visualization.draw = False
    weights_only_checkpoints(cfg)
    return cfg, 'epoch_1.pth', ('coco/bbox_mAP', 'coco/segm_mAP')


def shrink_upernet(config, work_dir, helper_dir, data_root):
    cfg = shrink(config, work_dir, helper_dir, data_root)
    for name in ('train_dataloader', 'val_dataloader', 'test_dataloader'):
        set_pipeline_sizes(cfg[name].dataset.pipeline, (256, 128), crop=(64, 128))
    cfg.model.data_preprocessor.size = (64, 128)
    cfg.train_dataloader.batch_size = 2  # UperNet's pooled branch has BN: 2 images per process
    cfg.train_cfg = dict(type='IterBasedTrainLoop', max_iters=2, val_interval=2)
    cfg.default_hooks.checkpoint = dict(type='CheckpointHook', by_epoch=False, interval=2)
    cfg.default_hooks.visualization.draw = False
    weights_only_checkpoints(cfg)
    return cfg, 'iter_2.pth', ('mIoU', 'mAcc')


def shrink_linear_probe(config, work_dir, helper_dir, data_root):
    cfg = shrink(config, work_dir, helper_dir, data_root)
    for name in ('train_dataloader', 'val_dataloader', 'test_dataloader'):
        set_pipeline_sizes(cfg[name].dataset.pipeline, 72, crop=64)
    cfg.train_cfg = dict(by_epoch=True, max_epochs=1, val_interval=1)
    cfg.default_hooks.checkpoint = dict(type='CheckpointHook', interval=1)
    weights_only_checkpoints(cfg)
    return cfg, 'epoch_1.pth', ('accuracy/top1',)


CASES = {
    'det-swin': (f'{DET}/mask-rcnn_mst-swin-tiny_fpn_1x_coco.py', 'swin', make_coco, shrink_mask_rcnn, 'mmdetection'),
    'det-deit': (f'{DET}/mask-rcnn_mst-deit-small-p16-sfp_fpn_1x_coco.py', 'vit', make_coco, shrink_mask_rcnn,
                 'mmdetection'),
    'seg-deit': (f'{SEG}/upernet_mst-deit-small-p16_8xb2-80k_cityscapes-512x1024.py', 'vit', make_cityscapes,
                 shrink_upernet, 'mmsegmentation'),
    'seg-swin': (f'{SEG}/upernet_mst-swin-tiny_8xb2-80k_cityscapes-512x1024.py', 'swin', make_cityscapes,
                 shrink_upernet, 'mmsegmentation'),
    'linear-deit': (PROBE, 'vit', make_imagenet, shrink_linear_probe, None),
}  # fmt: skip


@pytest.mark.slow
@pytest.mark.parametrize('key', list(CASES))
def test_two_process_finetune_then_test_through_the_launchers(key, mst_checkpoints, helper_dir, free_port, tmp_path):
    config, arch, make_data, shrink_fn, codebase = CASES[key]
    checkpoint, teacher = mst_checkpoints[arch]
    data_root = tmp_path / 'data'
    train_parts = make_data(data_root)
    work_dir = tmp_path / 'work'
    cfg, last, metric_keys = shrink_fn(config, work_dir, helper_dir, data_root)
    small_config = tmp_path / osp.basename(config)
    cfg.dump(str(small_config))

    # train: the launcher the README shows, 2 processes
    if codebase is None:  # the linear probe runs on mmmst's own tools
        train = ['bash', 'tools/dist_train.sh', str(small_config), '2', '--cfg-options',
                 f'model.backbone.init_cfg.checkpoint={checkpoint}']  # fmt: skip
    else:
        train = ['bash', f'tools/benchmarks/{codebase}/dist_train.sh', str(small_config), checkpoint, '2']
    log = run(train, helper_dir, free_port())
    assert 'Distributed training: True' in log

    # right after initialisation each process's backbone is the checkpoint's teacher, tensor for tensor
    pretrained = {f'backbone.{k}': v for k, v in teacher.items() if k != 'mask_token'}
    for rank in (0, 1):
        initial = torch.load(work_dir / f'init_rank{rank}.pth', weights_only=True)
        assert not any('mask_token' in name for name in initial)
        assert set(pretrained) <= set(initial)
        for name, tensor in pretrained.items():
            torch.testing.assert_close(initial[name], tensor, rtol=0, atol=0, msg=f'rank {rank}: {name}')

    # after training: fine-tuning moved every backbone weight; the linear probe only its head (frozen backbone)
    state = torch.load(work_dir / last, weights_only=False)['state_dict']
    weights = [n for n, t in pretrained.items() if t.is_floating_point()]
    unchanged = [n for n in weights if torch.equal(state[n], pretrained[n])]
    if codebase is None:
        assert unchanged == weights
        assert not torch.equal(state['head.fc.weight'], initial['head.fc.weight'])
    else:
        assert unchanged == []

    # test: only the evaluation data is left on disk
    for part in train_parts:
        shutil.rmtree(part) if part.is_dir() else part.unlink()
    ckpt = str(work_dir / last)
    if codebase is None:
        test = ['bash', 'tools/dist_test.sh', str(small_config), ckpt, '2', '--work-dir', str(tmp_path / 'test')]
    else:
        test = ['bash', f'tools/benchmarks/{codebase}/dist_test.sh', str(small_config), ckpt, '2',
                '--work-dir', str(tmp_path / 'test')]  # fmt: skip
    log = run(test, helper_dir, free_port())
    for metric in metric_keys:
        assert f'{metric}: ' in log, f'{metric} not printed:\n{log[-3000:]}'
