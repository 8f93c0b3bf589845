"""Every config under configs/ loads and builds; every pretraining config trains 2 iterations.

Overrides used below, for sizes only: data_root -> a 4-image ImageNet tree made by the test; batch 2, no worker
processes; global / local crops 64 / 32 px with 2 local views (ImageNet: 224 / 96 with 8); fp32 OptimWrapper
instead of AMP (no GPU here); 1 epoch (= 2 iterations).
"""

import glob
import os
import os.path as osp
import uuid

import numpy as np
import pytest
import torch
from mmengine.config import Config
from mmengine.dataset import Compose
from mmengine.registry import init_default_scope
from mmengine.runner import Runner

ROOT = osp.dirname(osp.dirname(osp.abspath(__file__)))
ALL_CONFIGS = sorted(p for p in glob.glob(osp.join(ROOT, 'configs/**/*.py'), recursive=True) if '_base_' not in p)
PRETRAIN_CONFIGS = [
    p for p in ALL_CONFIGS if osp.dirname(p) == osp.join(ROOT, 'configs/mst') and ('in1k' in p or '_custom' in p)
]


def config_id(path):
    return osp.relpath(path, osp.join(ROOT, 'configs'))


@pytest.mark.parametrize('path', ALL_CONFIGS, ids=config_id)
def test_config_builds_model_and_pipelines(path):
    cfg = Config.fromfile(path)
    init_default_scope(cfg.get('default_scope', 'mmpretrain'))
    from mmengine.registry import MODELS, TRANSFORMS

    model_cfg = cfg.model.copy()
    backbone = model_cfg.get('backbone', {})
    if backbone.get('init_cfg', {}).get('type') == 'Pretrained':
        backbone.pop('init_cfg')  # the checkpoint is given on the command line
    model = MODELS.build(model_cfg)
    assert type(model).__name__ == short_type(cfg.model.type)
    for part in ('backbone', 'neck', 'head'):
        if isinstance(cfg.model.get(part), dict) and hasattr(model, part):
            assert type(getattr(model, part)).__name__ == short_type(cfg.model[part].type), part
    for loader in ('train_dataloader', 'val_dataloader', 'knn_bank_dataloader', 'knn_query_dataloader'):
        if cfg.get(loader):
            pipeline = Compose([TRANSFORMS.build(t) for t in cfg[loader].dataset.pipeline])
            built = [type(t).__name__ for t in pipeline.transforms]
            assert built == [short_type(t['type']) for t in cfg[loader].dataset.pipeline], loader


def short_type(name: str) -> str:
    """A registry type without its scope: 'mmpretrain.LN2d' -> 'LN2d'."""
    return name.split('.')[-1]


def small_pretrain_cfg(path, data_root, work_dir):
    cfg = Config.fromfile(path)
    cfg.work_dir = str(work_dir)
    cfg.experiment_name = f'cfg_{uuid.uuid4().hex}'
    loader = cfg.train_dataloader
    loader.update(batch_size=2, num_workers=0, persistent_workers=False, pin_memory=False)
    # a folder of unlabeled images (the _custom configs): the 4 training images of the tree, at any depth
    custom = loader.dataset.type == 'CustomDataset'
    loader.dataset.data_root = osp.join(data_root, 'train') if custom else data_root
    views = next(t for t in loader.dataset.pipeline if t['type'] == 'MultiCropViews')
    views.update(global_crop_size=64, local_crop_size=32, num_local_views=2)
    cfg.optim_wrapper.type = 'OptimWrapper'
    cfg.optim_wrapper.pop('loss_scale', None)
    cfg.train_cfg.max_epochs = 1
    cfg.default_hooks.logger.interval = 1
    # the weights only: AdamW's moments of a DeiT-S / Swin-T (hundreds of MB) took 6 of a Swin run's 10 seconds
    cfg.default_hooks.checkpoint.save_optimizer = False
    cfg.log_level = 'WARNING'
    init_cfg = cfg.model.backbone.get('init_cfg') or {}
    if init_cfg.get('type') == 'Pretrained':  # a continued-pretraining config: weights of its backbone's shape
        from mmmst.apis.timm_format import build_reference_backbone

        backbone = build_reference_backbone(cfg.model.backbone)
        init_cfg.checkpoint = str(work_dir / 'start_mst.pth')
        torch.save(dict(state_dict={f'backbone.{k}': v for k, v in backbone.state_dict().items()}), init_cfg.checkpoint)
    return cfg


@pytest.mark.parametrize('path', PRETRAIN_CONFIGS, ids=config_id)
def test_pretrain_config_runs_two_iterations(path, imagenet_tree, tmp_path):
    runner = Runner.from_cfg(small_pretrain_cfg(path, imagenet_tree, tmp_path))
    runner.train()
    assert runner.iter == 2
    losses = runner.message_hub.get_scalar('train/loss').data[0]
    assert len(losses) == 2 and np.isfinite(losses).all()
    assert osp.isfile(tmp_path / 'epoch_1.pth')


def test_pretrain_configs_found():
    names = {osp.basename(p) for p in PRETRAIN_CONFIGS}
    assert {
        'mst_deit-small-p16_8xb128-amp-coslr-100e_in1k.py',
        'mst_deit-small-p16_8xb128-amp-coslr-300e_in1k.py',
        'mst_swin-tiny_8xb128-amp-coslr-100e_in1k.py',
        'mst_swin-tiny_8xb128-amp-coslr-300e_in1k.py',
    } <= names


@pytest.mark.parametrize('path', [p for p in PRETRAIN_CONFIGS if 'in1k' in p], ids=config_id)
def test_imagenet_pretraining_saves_every_epoch_and_keeps_a_bounded_number(path):
    """An ImageNet epoch is hours of work: a checkpoint after every one, the oldest rotated out, none non-finite."""
    cfg = Config.fromfile(path)
    hook = cfg.default_hooks.checkpoint
    assert hook.interval == 1 and hook.get('by_epoch', True)
    assert 0 < hook.max_keep_ckpts <= 5
    assert cfg.default_hooks.finite_checkpoint.type == 'FiniteCheckpointHook'


def test_weight_decay_groups_are_dinos():
    """DINO's get_params_groups: no decay where name ends with '.bias' or the tensor is 1-D; decay elsewhere,
    the position embedding and the CLS token included (and the [MASK] token, a 3-D tensor like them)."""
    from mmengine.logging import MessageHub
    from mmengine.optim import build_optim_wrapper
    from mmpretrain.registry import MODELS

    cfg = Config.fromfile(osp.join(ROOT, 'configs/mst/mst_deit-small-p16_8xb128-amp-coslr-100e_in1k.py'))
    init_default_scope('mmpretrain')
    MessageHub.get_current_instance().update_info('max_iters', 100)
    model = MODELS.build(cfg.model)
    wrapper = dict(cfg.optim_wrapper, type='OptimWrapper')  # the -amp- wrapper needs a GPU
    wrapper.pop('loss_scale', None)
    optim = build_optim_wrapper(model, wrapper)
    decay_of = {}
    for group in optim.param_groups:
        for p in group['params']:
            decay_of[id(p)] = group['weight_decay']
    for name, p in model.named_parameters():
        if not p.requires_grad:
            continue
        dino_decays = not (name.endswith('.bias') or p.ndim == 1)
        assert decay_of[id(p)] == (0.04 if dino_decays else 0.0), name
    for name in ('backbone.pos_embed', 'backbone.cls_token', 'backbone.mask_token'):
        assert decay_of[id(model.get_parameter(name))] == 0.04


def test_metafile_lists_every_config_and_only_existing_ones():
    """model-index.yml -> configs/mst/metafile.yml: what `mim search mmmst` sees; every entry builds (above)."""
    import yaml

    index = yaml.safe_load(open(osp.join(ROOT, 'model-index.yml')))
    assert index['Import'] == ['configs/mst/metafile.yml']
    meta = yaml.safe_load(open(osp.join(ROOT, index['Import'][0])))
    assert meta['Collections'][0]['Name'] == 'MST' and osp.isfile(osp.join(ROOT, meta['Collections'][0]['README']))
    listed = {osp.join(ROOT, m['Config']) for m in meta['Models']}
    assert listed == set(ALL_CONFIGS)  # every config, nothing that does not exist
    names = [m['Name'] for m in meta['Models']]
    assert len(names) == len(set(names)) and all(osp.basename(m['Config']) == m['Name'] + '.py' for m in meta['Models'])


def test_pil_pipeline_is_one_base_line_away(imagenet_tree, tmp_path):
    """DINO's PIL pipeline (every augmentation in the workers): the same config with the `-pil` dataset base."""
    source = open(osp.join(ROOT, 'configs/mst/mst_deit-small-p16_8xb128-amp-coslr-100e_in1k.py')).read()
    pil = source.replace('imagenet_bs128_mst.py', 'imagenet_bs128_mst-pil.py')
    assert pil.count('-pil') == 1
    path = osp.join(ROOT, 'configs/mst', f'tmp_pil_{uuid.uuid4().hex}.py')  # next to the real one: same _base_ paths
    try:
        open(path, 'w').write(pil)
        cfg = small_pretrain_cfg(path, imagenet_tree, tmp_path)
    finally:
        os.remove(path)
    assert cfg.data_preprocessor.type == 'SelfSupDataPreprocessor'
    views = next(t for t in cfg.train_dataloader.dataset.pipeline if t['type'] == 'MultiCropViews')
    assert views.photometric is True and views.get('backend', 'pillow') == 'pillow'
    runner = Runner.from_cfg(cfg)
    runner.train()
    assert runner.iter == 2 and np.isfinite(runner.message_hub.get_scalar('train/loss').data[0]).all()
