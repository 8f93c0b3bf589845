"""``import mmmst`` makes every component reachable from mmpretrain, mmdet and mmseg configs."""

import pytest
from mmengine.config import Config
from mmengine.registry import DefaultScope, init_default_scope

import mmmst

COMPONENTS = [
    ('MODELS', 'MST'),
    ('MODELS', 'MSTViT'),
    ('MODELS', 'MSTSwinTransformer'),
    ('MODELS', 'DINONeck'),
    ('MODELS', 'DINOHead'),
    ('MODELS', 'MSTDecoder'),
    ('MODELS', 'AttentionGuidedMaskGenerator'),
    ('MODELS', 'RandomMaskGenerator'),
    ('TRANSFORMS', 'MultiCropViews'),
    ('HOOKS', 'TeacherTempHook'),
    ('HOOKS', 'FreezeLastLayerHook'),
]

TINY_VIT = dict(
    type='MSTViT',
    arch=dict(embed_dims=32, num_layers=1, num_heads=2, feedforward_channels=64),
    img_size=32,
    patch_size=16,
)


@pytest.mark.parametrize('registry,name', COMPONENTS)
def test_component_is_in_mmpretrain_registry(registry, name):
    import mmpretrain.registry as mmpretrain_registry

    assert getattr(mmpretrain_registry, registry).get(name) is not None


def test_config_with_custom_imports_builds_under_mmpretrain_scope(tmp_path):
    cfg_file = tmp_path / 'cfg.py'
    cfg_file.write_text(
        "custom_imports = dict(imports=['mmmst'], allow_failed_imports=False)\n"
        "default_scope = 'mmpretrain'\n"
        f'model = {TINY_VIT!r}\n'
    )
    cfg = Config.fromfile(str(cfg_file))
    from mmpretrain.registry import MODELS

    with DefaultScope.overwrite_default_scope(cfg.default_scope):
        model = MODELS.build(cfg.model)
    assert isinstance(model, mmmst.models.MSTViT)


@pytest.mark.parametrize('codebase', ['mmdet', 'mmseg'])
def test_downstream_registry_reaches_backbone_as_mmpretrain_name(codebase):
    registry = __import__(f'{codebase}.registry', fromlist=['MODELS']).MODELS
    init_default_scope(codebase)
    model = registry.build(dict(TINY_VIT, type='mmpretrain.MSTViT'))
    assert isinstance(model, mmmst.models.MSTViT)
