"""mmdet / mmseg configs, loaded in-process: MST checkpoints really load, wrong ones fail loudly, layer decay.

The launcher runs (2 gloo processes, train then test) are in test_downstream_dist.py.
"""

import os.path as osp

import pytest
import torch
from mmengine.config import Config
from mmengine.registry import init_default_scope
from mmpretrain.structures import DataSample

ROOT = osp.dirname(osp.dirname(osp.abspath(__file__)))
DET = osp.join(ROOT, 'configs/mst/benchmarks/mmdetection')
SEG = osp.join(ROOT, 'configs/mst/benchmarks/mmsegmentation')
CONFIGS = {
    'det-swin': (osp.join(DET, 'mask-rcnn_mst-swin-tiny_fpn_1x_coco.py'), 'swin'),
    'det-deit': (osp.join(DET, 'mask-rcnn_mst-deit-small-p16-sfp_fpn_1x_coco.py'), 'vit'),
    'seg-deit': (osp.join(SEG, 'upernet_mst-deit-small-p16_8xb2-80k_cityscapes-512x1024.py'), 'vit'),
    'seg-swin': (osp.join(SEG, 'upernet_mst-swin-tiny_8xb2-80k_cityscapes-512x1024.py'), 'swin'),
}


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
    # every pretrained tensor but the mask token arrives; only the norms of the extra Swin output stages are new
    assert 'mask_token' in teacher and 'mask_token' not in state
    teacher = {k: v for k, v in teacher.items() if k != 'mask_token'}
    assert set(teacher) <= set(state)
    assert set(state) - set(teacher) <= {f'norm{i}.{p}' for i in range(3) for p in ('weight', 'bias')}
    for name, tensor in teacher.items():
        torch.testing.assert_close(state[name], tensor, msg=name)


@pytest.mark.parametrize('key', ['det-deit', 'seg-swin'])
def test_wrong_prefix_fails_loudly(key, mst_checkpoints):
    config, arch = CONFIGS[key]
    with pytest.raises(Exception, match='student.backbone. is not in the pretrained model'):
        build(config, mst_checkpoints[arch][0], prefix='student.backbone.')


def test_wrong_layout_lists_the_mismatch(mst_checkpoints, mmengine_warnings):
    """A Swin checkpoint into the DeiT-S detector: the load names what does not fit instead of staying quiet."""
    build(CONFIGS['det-deit'][0], mst_checkpoints['swin'][0])
    text = '\n'.join(mmengine_warnings)
    assert 'missing keys in source state_dict' in text and 'cls_token' in text and 'pos_embed' in text


def test_no_trainable_parameter_without_gradient(mst_checkpoints):
    """What stops DDP (find_unused_parameters=False) at its second step: a parameter no forward uses."""
    from mmengine.registry import MODELS

    cfg = Config.fromfile(osp.join(ROOT, 'configs/mst/benchmarks/deit-small-p16_linear-8xb128-coslr-100e_in1k.py'))
    init_default_scope('mmpretrain')
    cfg.model.backbone.init_cfg.checkpoint = mst_checkpoints['vit'][0]
    model = MODELS.build(cfg.model)
    model.init_weights()
    model.train()
    loss = model.loss(torch.randn(2, 3, 64, 64), [DataSample().set_gt_label(i) for i in (0, 1)])['loss']
    loss.backward()
    trainable = [n for n, p in model.named_parameters() if p.requires_grad]
    assert trainable == ['head.fc.weight', 'head.fc.bias']  # the frozen backbone has nothing left trainable
    assert all(p.grad is not None for n, p in model.named_parameters() if p.requires_grad)


@pytest.mark.parametrize('key,rate', [('det-deit', 0.7), ('seg-deit', 0.65)])
def test_layer_decay_reaches_every_mstvit_block(key, rate, mst_checkpoints):
    """lr of block i = base lr x rate ** (13 - (i + 1)); embeddings rate ** 13; neck and heads the base lr."""
    from mmengine.optim import build_optim_wrapper

    config, arch = CONFIGS[key]
    cfg = Config.fromfile(config)
    model = build(config, mst_checkpoints[arch][0])
    base_lr = cfg.optim_wrapper.optimizer.lr
    assert cfg.optim_wrapper.paramwise_cfg.layer_decay_rate == rate
    optimizer = build_optim_wrapper(model, cfg.optim_wrapper).optimizer
    lr = {}
    for group in optimizer.param_groups:
        lr[group['param_name']] = (group['lr'], group['weight_decay'])
    assert set(lr) == {n for n, p in model.named_parameters() if p.requires_grad}
    for i in range(12):
        assert lr[f'backbone.layers.{i}.attn.qkv.weight'][0] == pytest.approx(base_lr * rate ** (12 - i))
    for name in ('backbone.patch_embed.projection.weight', 'backbone.pos_embed', 'backbone.cls_token'):
        assert lr[name][0] == pytest.approx(base_lr * rate**13), name
    head = next(n for n in lr if not n.startswith('backbone.'))
    assert lr[head][0] == pytest.approx(base_lr)
    wd = cfg.optim_wrapper.optimizer.weight_decay
    assert lr['backbone.layers.0.attn.qkv.weight'][1] == wd
    assert lr['backbone.layers.0.attn.qkv.bias'][1] == 0 and lr['backbone.pos_embed'][1] == 0
    assert lr['backbone.ln1.weight'][1] == 0


def test_layer_decay_refuses_a_backbone_without_depths():
    from mmengine.optim import build_optim_wrapper
    from torch import nn

    class Detector(nn.Module):
        def __init__(self):
            super().__init__()
            self.backbone = nn.Linear(2, 2)

    cfg = dict(
        optimizer=dict(type='AdamW', lr=1e-4),
        constructor='mmpretrain.BackboneLayerDecayOptimWrapperConstructor',
        paramwise_cfg=dict(layer_decay_rate=0.7),
    )
    with pytest.raises(TypeError, match='Detector.backbone \\(Linear\\) has no get_layer_depth'):
        build_optim_wrapper(Detector(), cfg)
