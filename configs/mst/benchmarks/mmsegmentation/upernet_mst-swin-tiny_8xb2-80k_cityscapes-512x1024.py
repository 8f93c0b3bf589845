# Cityscapes, UperNet, 512 x 1024 crops, 80k iterations, Swin-T from an MST checkpoint.
_base_ = './upernet_mst-deit-small-p16_8xb2-80k_cityscapes-512x1024.py'

model = dict(
    backbone=dict(
        _delete_=True,
        type='mmpretrain.MSTSwinTransformer',
        arch='tiny',
        img_size=224,
        drop_path_rate=0.3,
        out_indices=(0, 1, 2, 3),
        init_cfg=dict(type='Pretrained', checkpoint=None, prefix='teacher.module.backbone.'),
    ),
    neck=None,  # Swin is already multi-scale
    decode_head=dict(in_channels=[96, 192, 384, 768]),
    auxiliary_head=dict(in_channels=384, in_index=2),
)
