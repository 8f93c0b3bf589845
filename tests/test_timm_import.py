"""Continuing from a public backbone: ``tools/model_converters/timm_to_mst.py`` reads timm, DINO and DeiT checkpoints
into weights an MST config starts from, with the source model's features."""

import argparse
import os

import pytest
import timm
import torch
from mmengine.config import Config

from tests.helpers import DEMO_CFG, PY, last_line, run, run_main

DEIT_S_CFG = 'configs/mst/mst_deit-small-p16_8xb128-amp-coslr-100e_in1k.py'
SWIN_T_CFG = 'configs/mst/mst_swin-tiny_8xb128-amp-coslr-100e_in1k.py'
TOOL = 'tools/model_converters/timm_to_mst.py'


def start_mst_from(config, weights, printed, tmp_path):
    """The MST model of a config that inherits ``config`` and adds the line the tool printed, as a user does."""
    from mmmst.registry import MODELS

    line = printed.strip().splitlines()[-1].strip()
    assert line.startswith('model = dict(backbone=dict(init_cfg=') and str(weights) in line
    (tmp_path / 'continue.py').write_text(f"_base_ = ['{os.path.abspath(config)}']\n{line}\n")
    model = MODELS.build(Config.fromfile(tmp_path / 'continue.py').model)
    model.init_weights()
    return model.eval()


def demo_sized_timm_vit(**overrides):
    """A random timm ViT of the demo config's shape (2 blocks, 128 wide, patch 4, 28 px, 1 channel)."""
    from mmmst.apis.timm_format import timm_vit_kwargs

    kwargs = dict(timm_vit_kwargs(Config.fromfile(DEMO_CFG).model.backbone), **overrides)
    return timm.models.VisionTransformer(**kwargs).eval()


def test_a_timm_vit_small_starts_student_and_teacher_with_its_features(tmp_path):
    source = timm.create_model('vit_small_patch16_224', pretrained=False).eval()  # with its 1000-class head
    torch.save(source.state_dict(), tmp_path / 'vit_s.pth')
    out = tmp_path / 'vit_s_mst.pth'
    result = run([PY, TOOL, str(tmp_path / 'vit_s.pth'), str(out), '--config', DEIT_S_CFG])
    assert result.returncode == 0, result.stderr[-3000:]
    mst = start_mst_from(DEIT_S_CFG, out, result.stdout, tmp_path)
    images = torch.randn(2, 3, 224, 224)
    with torch.no_grad():
        expected = source.forward_head(source.forward_features(images), pre_logits=True)  # CLS after the norm
        torch.testing.assert_close(mst.teacher.module.backbone(images)[-1], expected, rtol=1e-5, atol=1e-5)
        torch.testing.assert_close(mst.backbone(images)[-1], expected, rtol=1e-5, atol=1e-5)
    assert mst.backbone.mask_token.abs().sum() > 0  # MST's own, fresh


def test_a_timm_swin_tiny_starts_mst_with_its_features(tmp_path):
    source = timm.create_model('swin_tiny_patch4_window7_224', pretrained=False, always_partition=True).eval()
    torch.save(source.state_dict(), tmp_path / 'swin_t.pth')
    out = tmp_path / 'swin_t_mst.pth'
    result = run_main(TOOL, tmp_path / 'swin_t.pth', out, '--config', SWIN_T_CFG)
    assert result.returncode == 0, result.stderr[-3000:]
    mst = start_mst_from(SWIN_T_CFG, out, result.stdout, tmp_path)
    images = torch.randn(2, 3, 224, 224)
    with torch.no_grad():
        expected = source.forward_head(source.forward_features(images), pre_logits=True)  # pooled, normalised
        torch.testing.assert_close(mst.teacher.module.backbone.encode(images).cls_token, expected, rtol=1e-4,
                                   atol=1e-5)  # fmt: skip


def test_dinos_full_checkpoint_gives_its_teacher_or_student_and_admits_only_its_namespace(tmp_path):
    teacher, student = demo_sized_timm_vit().state_dict(), demo_sized_timm_vit().state_dict()
    dino = dict(
        teacher={**{f'backbone.{k}': v for k, v in teacher.items()}, 'head.last_layer.weight_g': torch.ones(1, 1)},
        student={f'module.backbone.{k}': v for k, v in student.items()},
        args=argparse.Namespace(arch='vit_small', lr=5e-4, local_crops_number=8),
        epoch=100,
        dino_loss=dict(center=torch.zeros(1, 64)),
    )
    torch.save(dino, tmp_path / 'dino.pth')
    for flag, expected in (([], teacher), (['--student'], student)):
        out = tmp_path / f'dino_mst{len(flag)}.pth'
        result = run_main(TOOL, tmp_path / 'dino.pth', out, '--config', DEMO_CFG, *flag)
        assert result.returncode == 0, result.stderr
        assert "read DINO's full checkpoint" in result.stdout
        state = torch.load(out)['state_dict']
        torch.testing.assert_close(state['backbone.layers.1.ffn.layers.1.weight'], expected['blocks.1.mlp.fc2.weight'])
        assert not any('head' in k for k in state)

    marker = tmp_path / 'ran'

    class Payload:
        def __reduce__(self):
            return os.mkdir, (str(marker),)

    torch.save(dict(model=teacher, args=Payload()), tmp_path / 'hostile.pth')
    result = run([PY, TOOL, str(tmp_path / 'hostile.pth'), str(tmp_path / 'o.pth'), '--config', DEMO_CFG])
    assert result.returncode == 1 and not marker.exists() and not (tmp_path / 'o.pth').exists()
    assert last_line(result).startswith(f"error: refusing '{tmp_path / 'hostile.pth'}': it holds an object other")


def test_deits_release_loads_and_a_distilled_deit_is_refused(tmp_path):
    model = demo_sized_timm_vit()
    state = dict(model.state_dict(), **{'head.weight': torch.zeros(10, 128), 'head.bias': torch.zeros(10)})
    torch.save(dict(model=state), tmp_path / 'deit.pth')
    result = run_main(TOOL, tmp_path / 'deit.pth', tmp_path / 'out.pth', '--config', DEMO_CFG)
    assert result.returncode == 0 and 'read a DeiT / Swin release ("model")' in result.stdout
    mst = start_mst_from(DEMO_CFG, tmp_path / 'out.pth', result.stdout, tmp_path)  # the weights, read back
    images = torch.randn(2, 1, 28, 28)
    with torch.no_grad():
        expected = model.forward_head(model.forward_features(images), pre_logits=True)
        torch.testing.assert_close(mst.teacher.module.backbone(images)[-1], expected, rtol=1e-5, atol=1e-5)
    state['dist_token'] = torch.zeros(1, 1, 128)
    torch.save(dict(model=state), tmp_path / 'deit_distilled.pth')
    result = run_main(TOOL, tmp_path / 'deit_distilled.pth', tmp_path / 'out2.pth', '--config', DEMO_CFG)
    assert last_line(result) == (
        f'error: {tmp_path / "deit_distilled.pth"} holds a distilled DeiT (dist_token): MSTViT has one CLS token; '
        f'take the non-distilled DeiT'
    )
    assert not (tmp_path / 'out2.pth').exists()


@pytest.mark.parametrize('kind', ['vit', 'swin'])
def test_mst_to_timm_to_mst_gives_the_same_tensors(kind, mst_checkpoints, tmp_path):
    checkpoint, teacher_state = mst_checkpoints[kind]
    config = DEIT_S_CFG if kind == 'vit' else SWIN_T_CFG
    exported = run_main('tools/model_converters/mst_to_timm.py', checkpoint, tmp_path / 'timm.pth', '--config', config)
    assert exported.returncode == 0, exported.stderr
    imported = run_main(TOOL, tmp_path / 'timm.pth', tmp_path / 'back.pth', '--config', config)
    assert imported.returncode == 0, imported.stderr
    back = torch.load(tmp_path / 'back.pth')['state_dict']
    expected = {f'backbone.{k}': v for k, v in teacher_state.items() if k != 'mask_token'}
    assert back.keys() == expected.keys()
    for key, value in expected.items():
        torch.testing.assert_close(back[key], value, rtol=0, atol=0, msg=key)


def test_the_position_embedding_is_resampled_to_the_configs_image_size(tmp_path):
    from mmpretrain.models.utils import resize_pos_embed

    source = demo_sized_timm_vit(img_size=32)  # 8 x 8 patches; the demo config has 7 x 7
    torch.save(source.state_dict(), tmp_path / 'vit32.pth')
    result = run_main(TOOL, tmp_path / 'vit32.pth', tmp_path / 'out.pth', '--config', DEMO_CFG)
    assert result.returncode == 0, result.stderr
    assert 'pos_embed resampled from 8 x 8 to 7 x 7 patches (bicubic)' in result.stdout
    pos_embed = torch.load(tmp_path / 'out.pth')['state_dict']['backbone.pos_embed']
    expected = resize_pos_embed(source.pos_embed.detach(), (8, 8), (7, 7), 'bicubic', 1)
    torch.testing.assert_close(pos_embed, expected)
    mst = start_mst_from(DEMO_CFG, tmp_path / 'out.pth', result.stdout, tmp_path)
    torch.testing.assert_close(mst.backbone.pos_embed.detach(), expected)


@pytest.mark.parametrize(
    'overrides, message',
    [
        (dict(patch_size=7), 'width 128, 1 input channels, patch size 7 in {src}; width 128, 1 input channels, '
                             'patch size 4 in the config: the backbones differ'),
        (dict(depth=3), '3 blocks in {src}, 2 in the config: the backbones differ'),
        (dict(embed_dim=64, num_heads=2), 'width 64 in {src}, 128 in the config: the backbones differ'),
        (dict(qkv_bias=False), '{src} and the config differ in their weights: missing'),
    ],
)  # fmt: skip
def test_a_backbone_of_another_shape_is_refused_in_one_line_naming_both(overrides, message, tmp_path):
    src = tmp_path / 'other.pth'
    torch.save(demo_sized_timm_vit(**overrides).state_dict(), src)
    result = run_main(TOOL, src, tmp_path / 'out.pth', '--config', DEMO_CFG)
    assert result.returncode == 1 and last_line(result).startswith('error: ' + message.format(src=src))
    assert not (tmp_path / 'out.pth').exists()


def test_swin_sizes_where_timm_computes_other_features_are_refused_both_ways(mst_checkpoints, tmp_path):
    """At 192 px Swin-T's first map is 48 x 48, not a multiple of the window (7): mmpretrain pads then shifts, timm
    shifts then pads. The same weights give other features there (checked), so neither direction maps them."""
    from mmmst.apis.timm_format import timm_swin_kwargs
    from mmmst.models import MSTSwinTransformer

    base = os.path.abspath(SWIN_T_CFG)
    (tmp_path / 'swin192.py').write_text(f"_base_ = ['{base}']\nmodel = dict(backbone=dict(img_size=192))\n")
    config = str(tmp_path / 'swin192.py')
    checkpoint, teacher_state = mst_checkpoints['swin']
    exported = run_main('tools/model_converters/mst_to_timm.py', checkpoint, tmp_path / 'timm.pth', '--config', config)
    message = 'img_size 192: stage 0 has a 48 x 48 map, not a multiple of window_size 7'
    assert last_line(exported).startswith(f'error: {message}') and not (tmp_path / 'timm.pth').exists()
    torch.save(timm.create_model('swin_tiny_patch4_window7_224').state_dict(), tmp_path / 'swin.pth')
    imported = run_main(TOOL, tmp_path / 'swin.pth', tmp_path / 'out.pth', '--config', config)
    assert last_line(imported).startswith(f'error: {message}') and not (tmp_path / 'out.pth').exists()

    from mmmst.apis.timm_format import to_timm

    kwargs = dict(timm_swin_kwargs(Config.fromfile(config).model.backbone), strict_img_size=False)
    theirs = timm.models.SwinTransformer(**kwargs).eval()
    theirs.load_state_dict(to_timm({k: v for k, v in teacher_state.items() if k != 'mask_token'}, swin=True))
    ours = MSTSwinTransformer(arch='tiny', with_mask_token=True, img_size=192)
    ours.load_state_dict(teacher_state)
    ours.eval()  # mmpretrain's SwinTransformer.train returns None
    with torch.no_grad():
        for size, equal in ((224, True), (192, False)):
            images = torch.randn(1, 3, size, size)
            close = torch.allclose(theirs(images), ours(images)[-1].mean((2, 3)), rtol=1e-4, atol=1e-4)
            assert close == equal, size


def test_the_exported_timm_model_has_mmpretrains_qkv_bias_and_final_norm():
    """``qkv_bias=False`` / ``final_norm=False`` reach the printed timm model: it loads strictly, same features."""
    from mmmst.apis.timm_format import timm_vit_kwargs, to_timm
    from mmmst.models import MSTViT

    cfg = dict(Config.fromfile(DEMO_CFG).model.backbone, qkv_bias=False, final_norm=False)
    cfg.pop('type')
    ours = MSTViT(**cfg)
    ours.eval()  # mmpretrain's train() returns None
    theirs = timm.models.VisionTransformer(**timm_vit_kwargs(cfg)).eval()
    theirs.load_state_dict(to_timm(ours.state_dict(), swin=False))  # strict
    images = torch.randn(2, 1, 28, 28)
    with torch.no_grad():
        torch.testing.assert_close(theirs(images), ours(images)[-1], rtol=1e-5, atol=1e-5)


def test_a_file_that_is_no_checkpoint_is_refused_in_one_line(tmp_path):
    (tmp_path / 'notes.pth').write_text('not a checkpoint')
    torch.save(demo_sized_timm_vit().state_dict(), tmp_path / 'whole.pth')
    (tmp_path / 'half.pth').write_bytes((tmp_path / 'whole.pth').read_bytes()[:3000])  # an interrupted download
    (tmp_path / 'bad.safetensors').write_text('junk')
    for name in ('notes.pth', 'half.pth', 'bad.safetensors'):
        result = run_main(TOOL, tmp_path / name, tmp_path / 'out.pth', '--config', DEMO_CFG)
        assert result.returncode == 1 and last_line(result).startswith(f'error: {tmp_path / name}: not a readable')
        assert not (tmp_path / 'out.pth').exists()


@pytest.mark.parametrize(
    'extra, why',
    [
        ({'reg_token': torch.zeros(1, 4, 128)}, 'a ViT with register tokens: MSTViT has none'),
        (
            {'fc_norm.weight': torch.ones(128), 'fc_norm.bias': torch.zeros(128)},
            'an average-pooled ViT (fc_norm): MSTViT reads its CLS token after a final norm',
        ),
    ],
    ids=['reg_token', 'fc_norm'],
)
def test_a_vit_with_register_tokens_or_average_pooling_is_refused(extra, why, tmp_path):
    torch.save(dict(demo_sized_timm_vit().state_dict(), **extra), tmp_path / 'vit.pth')
    result = run_main(TOOL, tmp_path / 'vit.pth', tmp_path / 'out.pth', '--config', DEMO_CFG)
    assert last_line(result) == f'error: {tmp_path / "vit.pth"} holds {why}'
    assert not (tmp_path / 'out.pth').exists()


def test_a_safetensors_file_of_timm_loads_with_its_features(tmp_path):
    """timm's hub releases are model.safetensors files: read without pickle, the same features."""
    from safetensors.torch import save_file

    source = demo_sized_timm_vit()
    save_file({k: v.contiguous() for k, v in source.state_dict().items()}, tmp_path / 'model.safetensors')
    out = tmp_path / 'out.pth'
    result = run_main(TOOL, tmp_path / 'model.safetensors', out, '--config', DEMO_CFG)
    assert result.returncode == 0, result.stderr
    mst = start_mst_from(DEMO_CFG, out, result.stdout, tmp_path)
    images = torch.randn(2, 1, 28, 28)
    with torch.no_grad():
        expected = source.forward_head(source.forward_features(images), pre_logits=True)
        torch.testing.assert_close(mst.teacher.module.backbone(images)[-1], expected, rtol=1e-5, atol=1e-5)


def test_an_mst_checkpoint_or_the_output_as_its_own_input_is_refused(one_epoch_run, tmp_path):
    """An MST pretraining checkpoint is not a public backbone (mst_to_timm.py exports it); the source is never the
    output."""
    checkpoint = one_epoch_run / 'epoch_1.pth'
    result = run_main(TOOL, checkpoint, tmp_path / 'out.pth', '--config', DEMO_CFG)
    assert last_line(result) == (
        f'error: {checkpoint} is an MST checkpoint: continue it with load_from (or --resume), or export it with '
        'mst_to_timm.py first'
    )
    assert not (tmp_path / 'out.pth').exists()
    torch.save(demo_sized_timm_vit().state_dict(), tmp_path / 'vit.pth')
    before = (tmp_path / 'vit.pth').read_bytes()
    result = run_main(TOOL, tmp_path / 'vit.pth', tmp_path / 'vit.pth', '--config', DEMO_CFG)
    assert (
        last_line(result)
        == f"error: the output '{tmp_path / 'vit.pth'}' is the input checkpoint; give another file name"
    )
    assert (tmp_path / 'vit.pth').read_bytes() == before
