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
optim_wrapper = dict(paramwise_cfg=dict(custom_keys={'pos_embed': dict(decay_mult=0.0),
                                                     'cls_token': dict(decay_mult=0.0)}))
