"""Taking the backbone out: ``tools/model_converters/mst_to_timm.py`` gives timm models whose features equal the
MST teacher's on the same images."""

import timm
import torch

from tests.helpers import PY, SMALL_CFG, last_line, run, run_main

DEIT_S_CFG = 'configs/mst/mst_deit-small-p16_8xb128-amp-coslr-100e_in1k.py'
SWIN_T_CFG = 'configs/mst/mst_swin-tiny_8xb128-amp-coslr-100e_in1k.py'


def test_deit_small_loads_into_timms_vit_small_with_equal_features(mst_checkpoints, tmp_path):
    from mmmst.models import MSTViT

    checkpoint, teacher_state = mst_checkpoints['vit']
    out = tmp_path / 'timm.pth'
    result = run([PY, 'tools/model_converters/mst_to_timm.py', checkpoint, str(out), '--config', DEIT_S_CFG])
    assert result.returncode == 0, result.stderr[-3000:]
    assert "timm.create_model('vit_small_patch16_224', num_classes=0)" in result.stdout
    model = timm.create_model('vit_small_patch16_224', num_classes=0, pretrained=False).eval()
    model.load_state_dict(torch.load(out))  # strict: every key of timm's model, nothing else
    teacher = MSTViT(arch='deit-small', with_mask_token=True)
    teacher.load_state_dict(teacher_state)
    teacher.eval()
    images = torch.randn(2, 3, 224, 224)
    with torch.no_grad():
        torch.testing.assert_close(model(images), teacher(images)[-1], rtol=1e-5, atol=1e-5)


def test_the_small_cpu_model_loads_into_the_timm_vit_it_prints(one_epoch_run, tmp_path):
    """The config saved in the checkpoint gives the shape; timm builds it from the arguments the tool prints."""
    from mmengine.config import Config

    from mmmst.apis import init_model
    from mmmst.apis.timm_format import timm_vit_kwargs

    out = tmp_path / 'timm.pth'
    result = run([PY, 'tools/model_converters/mst_to_timm.py', str(one_epoch_run / 'epoch_1.pth'), str(out)])
    assert result.returncode == 0, result.stderr[-3000:]
    cfg = Config.fromfile(SMALL_CFG)
    kwargs = timm_vit_kwargs(cfg.model.backbone)
    assert f'timm.models.VisionTransformer({", ".join(f"{k}={v!r}" for k, v in kwargs.items())})' in result.stdout
    model = timm.models.VisionTransformer(**kwargs).eval()
    model.load_state_dict(torch.load(out))
    mst = init_model(cfg, str(one_epoch_run / 'epoch_1.pth'))
    images = torch.randn(3, 1, 28, 28)
    with torch.no_grad():
        torch.testing.assert_close(model(images), mst.extract_feat(images)[-1], rtol=1e-5, atol=1e-5)


def test_swin_tiny_loads_into_timms_swin_tiny_with_equal_features(mst_checkpoints, tmp_path):
    """Swin-T: timm's swin_tiny_patch4_window7_224 (always_partition=True, as the tool prints) computes the MST
    teacher's last-stage map, averaged: the patch-merging channels are reordered and timm keeps shifting windows in
    the 7 x 7 last stage as MST's Swin (pad_small_map) does."""
    from mmmst.models import MSTSwinTransformer

    checkpoint, teacher_state = mst_checkpoints['swin']
    out = tmp_path / 'timm.pth'
    result = run([PY, 'tools/model_converters/mst_to_timm.py', checkpoint, str(out), '--config', SWIN_T_CFG])
    assert result.returncode == 0, result.stderr[-3000:]
    call = "timm.create_model('swin_tiny_patch4_window7_224', num_classes=0, always_partition=True)"
    assert call in result.stdout
    model = timm.create_model('swin_tiny_patch4_window7_224', num_classes=0, always_partition=True).eval()
    model.load_state_dict(torch.load(out))  # strict
    teacher = MSTSwinTransformer(arch='tiny', with_mask_token=True)
    teacher.load_state_dict(teacher_state)
    teacher.eval()
    images = torch.randn(2, 3, 224, 224)
    with torch.no_grad():
        torch.testing.assert_close(model(images), teacher(images)[-1].mean((2, 3)), rtol=1e-5, atol=1e-5)
        # without the channel reorder the features would be far off: the check can fail
        plain = timm.create_model('swin_tiny_patch4_window7_224', num_classes=0, always_partition=True).eval()
        state = torch.load(out)
        state['layers.1.downsample.reduction.weight'] = teacher_state['stages.0.downsample.reduction.weight']
        plain.load_state_dict(state)
        assert (plain(images) - model(images)).abs().max() > 0.1


def test_a_checkpoint_given_with_another_backbones_config_is_refused_in_one_line(mst_checkpoints, tmp_path):
    checkpoint, _ = mst_checkpoints['swin']
    result = run([PY, 'tools/model_converters/mst_to_timm.py', checkpoint, str(tmp_path / 'out.pth'),
                  '--config', DEIT_S_CFG])  # fmt: skip
    assert result.returncode != 0 and not (tmp_path / 'out.pth').exists()
    line = last_line(result)
    assert line == f"error: {checkpoint} holds a Swin Transformer; the config's backbone is MSTViT"
    no_config = run_main('tools/model_converters/mst_to_timm.py', checkpoint, tmp_path / 'out.pth')
    assert last_line(no_config) == f'error: {checkpoint} holds no config; give the pretraining config with --config'
