"""mmdet / mmseg configs: MST checkpoints really load, wrong ones fail loudly, and each trains and evaluates.

Smoke-run overrides (sizes only): data roots -> tiny COCO / Cityscapes trees made here in the exact on-disk formats;
batch 1 (UperNet training: 2), no workers; Mask R-CNN images resized to 128 x 96; Cityscapes resized to
256 x 128 with 64 x 128 crops; 2 training iterations, then one evaluation.
"""

import json
import logging
import os
import os.path as osp
import uuid

import numpy as np
import pytest
import torch
from mmengine.config import Config
from mmengine.registry import init_default_scope
from mmengine.runner import Runner
from PIL import Image

ROOT = osp.dirname(osp.dirname(osp.abspath(__file__)))
DET = osp.join(ROOT, 'configs/mst/benchmarks/mmdetection')
SEG = osp.join(ROOT, 'configs/mst/benchmarks/mmsegmentation')
CONFIGS = {
    'det-swin': (osp.join(DET, 'mask-rcnn_mst-swin-tiny_fpn_1x_coco.py'), 'swin'),
    'det-deit': (osp.join(DET, 'mask-rcnn_mst-deit-small-p16-sfp_fpn_1x_coco.py'), 'vit'),
    'seg-deit': (osp.join(SEG, 'upernet_mst-deit-small-p16_8xb2-80k_cityscapes-512x1024.py'), 'vit'),
    'seg-swin': (osp.join(SEG, 'upernet_mst-swin-tiny_8xb2-80k_cityscapes-512x1024.py'), 'swin'),
}


@pytest.fixture(scope='module')
def mst_checkpoints(tmp_path_factory):
    """MST-layout checkpoints (teacher and a different student) for DeiT-S and Swin-T; returns paths + teachers."""
    from mmmst.models import MSTSwinTransformer, MSTViT

    root = tmp_path_factory.mktemp('ckpt')
    out = {}
    for name, backbone in (('vit', MSTViT(arch='deit-small')), ('swin', MSTSwinTransformer(arch='tiny'))):
        backbone.init_weights()
        teacher = {
            k: v + 0.01 * torch.randn_like(v) if v.is_floating_point() else v for k, v in backbone.state_dict().items()
        }
        state = {f'teacher.module.backbone.{k}': v for k, v in teacher.items()}
        state.update({f'backbone.{k}': v for k, v in backbone.state_dict().items()})  # the student
        path = root / f'mst_{name}.pth'
        torch.save(dict(state_dict=state, meta=dict(epoch=100)), path)
        out[name] = (str(path), teacher)
    return out


def build(config, checkpoint, prefix=None):
    cfg = Config.fromfile(config)
    init_default_scope(cfg.default_scope)
    cfg.model.backbone.init_cfg.checkpoint = checkpoint
    if prefix is not None:
        cfg.model.backbone.init_cfg.prefix = prefix
    from mmengine.registry import MODELS

    model = MODELS.build(cfg.model)
    model.init_weights()
    return model


@pytest.mark.parametrize('key', list(CONFIGS))
def test_backbone_tensors_equal_checkpoint_teacher(key, mst_checkpoints):
    config, arch = CONFIGS[key]
    path, teacher = mst_checkpoints[arch]
    model = build(config, path)
    state = model.backbone.state_dict()
    # every pretrained tensor arrives; only the norms of the extra Swin output stages are new
    assert set(teacher) <= set(state)
    assert set(state) - set(teacher) <= {f'norm{i}.{p}' for i in range(3) for p in ('weight', 'bias')}
    for name, tensor in teacher.items():
        torch.testing.assert_close(state[name], tensor, msg=name)


@pytest.mark.parametrize('key', ['det-deit', 'seg-swin'])
def test_wrong_prefix_fails_loudly(key, mst_checkpoints):
    config, arch = CONFIGS[key]
    with pytest.raises(Exception, match='student.backbone. is not in the pretrained model'):
        build(config, mst_checkpoints[arch][0], prefix='student.backbone.')


def test_wrong_layout_lists_the_mismatch(mst_checkpoints):
    """A Swin checkpoint into the DeiT-S detector: the load names what does not fit instead of staying quiet."""
    from mmengine.logging import MMLogger

    messages = []
    handler = logging.Handler(level=logging.WARNING)
    handler.emit = lambda record: messages.append(record.getMessage())
    logger = MMLogger.get_current_instance()
    logger.addHandler(handler)
    try:
        build(CONFIGS['det-deit'][0], mst_checkpoints['swin'][0])
    finally:
        logger.removeHandler(handler)
    text = '\n'.join(messages)
    assert 'missing keys in source state_dict' in text and 'cls_token' in text and 'pos_embed' in text


@pytest.fixture(scope='module')
def coco_tree(tmp_path_factory):
    """2 train + 2 val images with polygon masks in COCO's json format."""
    root = tmp_path_factory.mktemp('coco')
    rng = np.random.default_rng(0)
    os.makedirs(root / 'annotations')
    for split in ('train', 'val'):
        os.makedirs(root / split)
        images, annotations = [], []
        for i in range(2):
            Image.fromarray(rng.integers(0, 255, (96, 128, 3), dtype=np.uint8)).save(root / split / f'{i}.jpg')
            images.append(dict(id=i + 1, file_name=f'{i}.jpg', height=96, width=128))
            x, y, w, h = 20 + 10 * i, 15, 60, 50
            annotations.append(
                dict(
                    id=i + 1,
                    image_id=i + 1,
                    category_id=1,
                    iscrowd=0,
                    area=w * h / 2,
                    bbox=[x, y, w, h],
                    segmentation=[[x, y, x + w, y, x + w / 2, y + h]],
                )
            )
        categories = [dict(id=1, name='person')]
        with open(root / 'annotations' / f'instances_{split}.json', 'w') as f:
            json.dump(dict(images=images, annotations=annotations, categories=categories), f)
    return str(root)


@pytest.fixture(scope='module')
def cityscapes_tree(tmp_path_factory):
    """leftImg8bit/{train,val}/<city>/*_leftImg8bit.png + gtFine/.../*_gtFine_labelTrainIds.png, 2 images each."""
    root = tmp_path_factory.mktemp('cityscapes')
    rng = np.random.default_rng(0)
    for split in ('train', 'val'):
        for folder in ('leftImg8bit', 'gtFine'):
            os.makedirs(root / folder / split / 'aachen')
        for i in range(2):
            stem = f'aachen_00000{i}_000019'
            Image.fromarray(rng.integers(0, 255, (128, 256, 3), dtype=np.uint8)).save(
                root / 'leftImg8bit' / split / 'aachen' / f'{stem}_leftImg8bit.png'
            )
            labels = np.zeros((128, 256), dtype=np.uint8)
            labels[:, 128:] = 13  # car
            labels[:10] = 255  # ignore
            Image.fromarray(labels).save(root / 'gtFine' / split / 'aachen' / f'{stem}_gtFine_labelTrainIds.png')
    return str(root)


def set_pipeline_sizes(pipeline, scale, crop=None):
    for t in pipeline:
        if t['type'] in ('Resize', 'RandomResize'):
            t['scale'] = scale
            t.pop('ratio_range', None) if t['type'] == 'Resize' else None
        if t['type'] == 'RandomCrop' and crop is not None:
            t['crop_size'] = crop


def common_overrides(cfg, work_dir, checkpoint):
    cfg.work_dir = str(work_dir)
    cfg.experiment_name = f'smoke_{uuid.uuid4().hex}'
    cfg.model.backbone.init_cfg.checkpoint = checkpoint
    cfg.log_level = 'WARNING'
    for name in ('train_dataloader', 'val_dataloader', 'test_dataloader'):
        cfg[name].update(batch_size=1, num_workers=0, persistent_workers=False)
    cfg.default_hooks.logger.interval = 1
    cfg.default_hooks.visualization.draw = False


@pytest.mark.parametrize('key', ['det-swin', 'det-deit'])
def test_mask_rcnn_smoke_run(key, coco_tree, mst_checkpoints, tmp_path):
    config, arch = CONFIGS[key]
    cfg = Config.fromfile(config)
    common_overrides(cfg, tmp_path, mst_checkpoints[arch][0])
    for name, split in (('train_dataloader', 'train'), ('val_dataloader', 'val'), ('test_dataloader', 'val')):
        dataset = cfg[name].dataset
        dataset.update(
            data_root=coco_tree,
            ann_file=f'annotations/instances_{split}.json',
            data_prefix=dict(img=f'{split}/'),
            metainfo=dict(classes=('person',)),
        )
        set_pipeline_sizes(dataset.pipeline, (128, 96))
    for name in ('val_evaluator', 'test_evaluator'):
        cfg[name].ann_file = osp.join(coco_tree, 'annotations/instances_val.json')
    cfg.model.roi_head.bbox_head.num_classes = 1
    cfg.model.roi_head.mask_head.num_classes = 1
    cfg.train_cfg = dict(type='EpochBasedTrainLoop', max_epochs=1, val_interval=1)
    runner = Runner.from_cfg(cfg)
    runner.train()
    assert runner.iter == 2
    assert np.isfinite(runner.message_hub.get_scalar('train/loss').data[0]).all()
    scalars = runner.message_hub.log_scalars
    assert 'val/coco/bbox_mAP' in scalars and 'val/coco/segm_mAP' in scalars


@pytest.mark.parametrize('key', ['seg-deit', 'seg-swin'])
def test_upernet_cityscapes_smoke_run(key, cityscapes_tree, mst_checkpoints, tmp_path):
    config, arch = CONFIGS[key]
    cfg = Config.fromfile(config)
    common_overrides(cfg, tmp_path, mst_checkpoints[arch][0])
    for name in ('train_dataloader', 'val_dataloader', 'test_dataloader'):
        cfg[name].dataset.data_root = cityscapes_tree
        set_pipeline_sizes(cfg[name].dataset.pipeline, (256, 128), crop=(64, 128))
    cfg.model.data_preprocessor.size = (64, 128)
    cfg.train_dataloader.batch_size = 2  # the pooled branch of UperNet has BN: 2 images per batch
    cfg.train_cfg = dict(type='IterBasedTrainLoop', max_iters=2, val_interval=2)
    cfg.default_hooks.checkpoint = dict(type='CheckpointHook', by_epoch=False, interval=2)
    runner = Runner.from_cfg(cfg)
    runner.train()
    assert runner.iter == 2
    scalars = runner.message_hub.log_scalars
    assert 'val/mIoU' in scalars and 'val/mAcc' in scalars
