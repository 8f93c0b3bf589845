"""MSTViT / MSTSwinTransformer: [MASK] token, CLS attention, crops of two sizes."""

import pytest
import torch
from mmpretrain.models.backbones import SwinTransformer, VisionTransformer

from mmmst.models import MSTSwinTransformer, MSTViT

TINY = dict(embed_dims=32, num_layers=2, num_heads=4, feedforward_channels=64)
TINY_SWIN = dict(embed_dims=16, depths=[1, 1], num_heads=[2, 2])


def tiny_vit(**kwargs):
    kwargs.setdefault('with_mask_token', True)
    model = MSTViT(arch=TINY, img_size=32, patch_size=8, **kwargs)
    model.init_weights()
    model.eval()
    return model


def naive_cls_attention(model, x):
    """softmax(q K^T / sqrt(d)) of the last block's input, CLS row, patches only, mean over heads."""
    captured = {}
    handle = model.layers[-1].register_forward_pre_hook(lambda m, args: captured.setdefault('x', args[0]))
    model(x)
    handle.remove()
    layer = model.layers[-1]
    h = layer.ln1(captured['x'])
    B, L, C = h.shape
    heads = layer.attn.num_heads
    q, k, _ = layer.attn.qkv(h).reshape(B, L, 3, heads, C // heads).permute(2, 0, 3, 1, 4)
    attn = (q @ k.transpose(-2, -1) / (C // heads) ** 0.5).softmax(-1)  # (B, heads, L, L)
    return attn[:, :, 0, 1:].mean(1)


def test_cls_attention_equals_naive_softmax_reference():
    model = tiny_vit()
    x = torch.randn(3, 3, 32, 32)
    out = model.encode(x, return_cls_attention=True)
    assert out.cls_attention.shape == (3, 16)
    torch.testing.assert_close(out.cls_attention, naive_cls_attention(model, x), rtol=1e-5, atol=1e-6)


def test_encode_matches_mmpretrain_vit_forward():
    """Without a mask, MSTViT computes exactly mmpretrain's ViT."""
    model = tiny_vit()
    reference = VisionTransformer(arch=TINY, img_size=32, patch_size=8, out_type='raw')
    reference.eval()
    reference.load_state_dict(model.state_dict(), strict=False)
    x = torch.randn(2, 3, 32, 32)
    tokens = reference(x)[0]
    out = model.encode(x, return_cls_attention=True)
    torch.testing.assert_close(out.cls_token, tokens[:, 0])
    torch.testing.assert_close(out.patch_map.flatten(2).transpose(1, 2), tokens[:, 1:])
    torch.testing.assert_close(model(x)[0], tokens[:, 0])  # default out_type='cls_token'


def test_masked_patches_carry_only_the_mask_token():
    model = tiny_vit()
    x1, x2 = torch.randn(1, 3, 32, 32), torch.randn(1, 3, 32, 32)
    full = torch.ones(1, 16, dtype=torch.bool)
    # every patch masked: the image no longer matters
    torch.testing.assert_close(model.encode(x1, full).cls_token, model.encode(x2, full).cls_token)
    # one patch masked: changing that patch's pixels changes nothing, changing another one does
    mask = torch.zeros(1, 16, dtype=torch.bool)
    mask[0, 0] = True
    x3 = x1.clone()
    x3[..., :8, :8] += 1.0  # patch 0
    torch.testing.assert_close(model.encode(x1, mask).cls_token, model.encode(x3, mask).cls_token)
    assert not torch.allclose(model.encode(x1).cls_token, model.encode(x3).cls_token)


def test_mask_token_receives_gradient_only_when_used():
    model = tiny_vit()
    x = torch.randn(2, 3, 32, 32)
    # squared: the plain sum of a LayerNorm output has zero gradient whatever the input
    model.encode(x).cls_token.pow(2).sum().backward()
    assert model.mask_token.grad is None or not model.mask_token.grad.any()
    mask = torch.zeros(2, 16, dtype=torch.bool)
    mask[:, 3] = True
    model.encode(x, mask).cls_token.pow(2).sum().backward()
    assert model.mask_token.grad.abs().sum() > 0


def test_local_crops_use_interpolated_position_embedding():
    """A 16-px local crop of a 32-px model: its 2 x 2 patches get the 4 x 4 position embedding resized bicubically
    (DINO's interpolate_pos_encoding), the CLS token its own, computed here by hand."""
    model = tiny_vit()
    with torch.no_grad():
        model.pos_embed.normal_()  # a position embedding that tells positions apart
        x = torch.randn(2, 3, 16, 16)
        tokens, resolution = model._embed(x, None)
        patches = model.patch_embed(x)[0]  # (2, 4, 32)
        grid = model.pos_embed[:, 1:].reshape(1, 4, 4, 32).permute(0, 3, 1, 2)
        resized = torch.nn.functional.interpolate(grid, size=(2, 2), mode='bicubic', align_corners=False)
        expected = torch.cat(
            [
                (model.cls_token + model.pos_embed[:, :1]).expand(2, -1, -1),
                patches + resized.flatten(2).transpose(1, 2),
            ],
            dim=1,
        )
    assert resolution == (2, 2)
    torch.testing.assert_close(tokens, expected)
    out = model.encode(x, return_cls_attention=True)
    assert out.patch_map.shape == (2, 32, 2, 2) and out.cls_attention.shape == (2, 4)


def test_wrong_mask_shape_is_a_clear_error():
    with pytest.raises(ValueError, match='mask shape \\(2, 15\\)'):
        tiny_vit().encode(torch.randn(2, 3, 32, 32), torch.zeros(2, 15, dtype=torch.bool))


@pytest.mark.parametrize(
    'kwargs,match',
    [
        (dict(arch='deit-gigantic'), "unknown arch 'deit-gigantic'"),
        (dict(arch='deit-tiny', img_size=100), 'img_size 100 is not divisible by patch_size 16'),
    ],
)
def test_vit_bad_config(kwargs, match):
    with pytest.raises(ValueError, match=match):
        MSTViT(**kwargs)


def tiny_swin(with_mask_token=True):
    model = MSTSwinTransformer(
        arch=TINY_SWIN, img_size=32, patch_size=4, window_size=4, out_indices=(1,), with_mask_token=with_mask_token
    )
    model.init_weights()
    model.eval()
    return model


def test_swin_encode_and_attention_stand_in():
    model = tiny_swin()
    x = torch.randn(2, 3, 32, 32)
    out = model.encode(x, return_cls_attention=True)
    assert out.patch_map.shape == (2, 32, 4, 4) and out.cls_token.shape == (2, 32)
    tokens = out.patch_map.flatten(2).transpose(1, 2)  # (B, 16, C)
    torch.testing.assert_close(out.cls_token, tokens.mean(1))
    expected = (torch.einsum('bnc,bc->bn', tokens, tokens.mean(1)) / 32**0.5).softmax(-1)
    torch.testing.assert_close(out.cls_attention, expected)
    # the standard forward is mmpretrain's Swin
    reference = SwinTransformer(arch=TINY_SWIN, img_size=32, patch_size=4, window_size=4, out_indices=(1,))
    reference.eval()
    reference.load_state_dict(model.state_dict(), strict=False)
    torch.testing.assert_close(model(x)[0], reference(x)[0])
    torch.testing.assert_close(model(x)[0], out.patch_map)


def test_swin_final_stage_mask_covers_its_block_of_patches():
    model = tiny_swin()
    x1 = torch.randn(1, 3, 32, 32)
    mask = torch.zeros(1, 16, dtype=torch.bool)
    mask[0, 0] = True  # final-stage token 0 covers the top-left 2x2 patches = 8x8 pixels
    x2 = x1.clone()
    x2[..., :8, :8] = torch.randn(1, 3, 8, 8)
    torch.testing.assert_close(model.encode(x1, mask).cls_token, model.encode(x2, mask).cls_token)
    x3 = x1.clone()
    x3[..., 8:16, :8] += 1.0
    assert not torch.allclose(model.encode(x1, mask).cls_token, model.encode(x3, mask).cls_token)


def test_swin_bad_config():
    with pytest.raises(ValueError, match="unknown arch 'huge'"):
        MSTSwinTransformer(arch='huge')
    with pytest.raises(ValueError, match='img_size 200 is not divisible by the final stride 32'):
        MSTSwinTransformer(arch='tiny', img_size=200)


@pytest.mark.parametrize('build', [tiny_vit, tiny_swin])
def test_downstream_backbone_has_no_mask_token_and_refuses_a_mask(build):
    """Built as a detector / segmentor / linear probe builds it: every parameter is one the forward uses."""
    model = build(with_mask_token=False)
    assert model.mask_token is None and 'mask_token' not in model.state_dict()
    model.train()
    x = torch.randn(2, 3, 32, 32)
    sum(out.sum() for out in model(x)).backward()
    unused = [name for name, p in model.named_parameters() if p.requires_grad and p.grad is None]
    assert unused == []
    with pytest.raises(ValueError, match='with_mask_token=False'):
        model.encode(x, torch.zeros(2, 16, dtype=torch.bool))


@pytest.mark.parametrize('build', [tiny_vit, tiny_swin])
def test_checkpoint_mask_token_is_dropped_and_everything_else_stays_strict(build):
    """An MST checkpoint (with mask token) loads strictly into a backbone without one; other keys still count."""
    pretrained = build(with_mask_token=True)
    state = pretrained.state_dict()
    model = build(with_mask_token=False)
    model.load_state_dict(state, strict=True)  # the mask token is the only extra key, and it is dropped
    for name, tensor in model.state_dict().items():
        torch.testing.assert_close(tensor, state[name], msg=name)
    with pytest.raises(RuntimeError, match='Unexpected key.*not_a_weight'):
        model.load_state_dict(dict(state, not_a_weight=torch.zeros(1)), strict=True)
    missing = {k: v for k, v in state.items() if k != 'norm1.weight' and not k.endswith('ln1.weight')}
    with pytest.raises(RuntimeError, match='Missing key'):
        model.load_state_dict(missing, strict=True)
    # a backbone that masks still needs the token from its checkpoint
    without_token = {k: v for k, v in state.items() if k != 'mask_token'}
    with pytest.raises(RuntimeError, match='Missing key.*mask_token'):
        build(with_mask_token=True).load_state_dict(without_token, strict=True)


@pytest.mark.parametrize('out_type', ['cls_token', 'featmap'])
def test_vit_outputs_against_mmpretrains_vit(out_type):
    """MSTViT without a mask is mmpretrain's VisionTransformer; ``norm_out_indices`` only adds the final norm to
    the earlier outputs (DINO's ``get_intermediate_layers``): out_i = ln1(raw_i), formatted."""
    arch = dict(embed_dims=32, num_layers=3, num_heads=4, feedforward_channels=64)
    common = dict(arch=arch, img_size=32, patch_size=8, out_indices=[0, 1, 2], drop_path_rate=0.0)
    reference = VisionTransformer(**common, out_type=out_type)
    raw = VisionTransformer(**common, out_type='raw')
    images = torch.randn(2, 3, 32, 32)
    for norm_out_indices in (False, True):
        ours = MSTViT(**common, out_type=out_type, norm_out_indices=norm_out_indices)
        ours.load_state_dict(reference.state_dict())  # no mask token: the same parameters, by name
        raw.load_state_dict(reference.state_dict())
        with torch.no_grad():
            got, expected, raw_outs = ours(images), reference(images), raw(images)
        torch.testing.assert_close(got[2], expected[2], rtol=0, atol=0)  # the last block: normed in both
        for i in (0, 1):
            if not norm_out_indices:
                torch.testing.assert_close(got[i], expected[i], rtol=0, atol=0)
                continue
            normed = ours.ln1(raw_outs[i])  # (B, 1 + N, C) tokens after the final norm
            want = normed[:, 0] if out_type == 'cls_token' else normed[:, 1:].transpose(1, 2).reshape(2, 32, 4, 4)
            torch.testing.assert_close(got[i], want)
            assert not torch.allclose(got[i], expected[i])  # the norm changed something
