# COCO Mask R-CNN + FPN, 1x schedule, DeiT-S/16 from an MST checkpoint behind a simple feature pyramid
# (ViTDet-style: strides 4, 8, 16, 32 made from the single stride-16 map).
_base_ = './mask-rcnn_mst-swin-tiny_fpn_1x_coco.py'

model = dict(
    backbone=dict(
        _delete_=True,
        type='mmpretrain.MSTViT',
        arch='deit-small',
        img_size=224,  # position embeddings are interpolated to every input size
        patch_size=16,
        drop_path_rate=0.1,
        out_type='featmap',
        out_indices=(11,),
        init_cfg=dict(type='Pretrained', checkpoint=None, prefix='teacher.module.backbone.'),
    ),
    neck=[
        dict(type='mmpretrain.SimpleFeaturePyramid', in_channels=384),
        dict(type='FPN', in_channels=[96, 192, 384, 384], out_channels=256, num_outs=5),
    ],
)
# Layer-wise lr decay, as ViT fine-tuning in the field does (ViTDet: 0.7 for 12 blocks): block i of 12 gets
# lr x 0.7 ** (13 - (i + 1)), the embeddings 0.7 ** 13, neck and heads the full lr. AdamW 1e-4 and wd 0.05 as
# in the Swin-T config; no decay on 1-D parameters (norms, biases), the position embedding and the CLS token.
# `--cfg-options optim_wrapper.paramwise_cfg.layer_decay_rate=1.0` turns the decay off.
optim_wrapper = dict(
    constructor='mmpretrain.BackboneLayerDecayOptimWrapperConstructor',
    paramwise_cfg=dict(
        _delete_=True,
        layer_decay_rate=0.7,
        flat_decay_mult=0.0,
        custom_keys={'.pos_embed': dict(decay_mult=0.0), '.cls_token': dict(decay_mult=0.0)},
    ),
)
