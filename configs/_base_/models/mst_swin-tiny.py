# MST with Swin-T: the DeiT-S model with the backbone (and the widths that follow from it) swapped.
_base_ = './mst_deit-small-p16.py'

model = dict(
    backbone=dict(
        _delete_=True, type='MSTSwinTransformer', arch='tiny', img_size=224, patch_size=4, drop_path_rate=0.1),
    neck=dict(in_channels=768),
    # Swin-T's final stage: 768 channels at stride 32
    decoder=dict(in_channels=768, stride=32),
)
