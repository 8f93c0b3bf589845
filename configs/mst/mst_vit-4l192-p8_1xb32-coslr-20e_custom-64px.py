# MST on a folder of your own images on a CPU, in minutes: a 4-layer, 192-wide ViT with 8-px patches on 64-px
# global views (8 x 8 patches) and 32-px local views, 32 images per iteration, 20 epochs.
#   python tools/train.py configs/mst/mst_vit-4l192-p8_1xb32-coslr-20e_custom-64px.py \
#       --cfg-options train_dataloader.dataset.data_root=<your folder>
# Small images: the crops keep DINO's area ranges (global 0.4-1, local 0.05-0.4 of the image), resized to 64 / 32
# px; a patch of 8 px keeps the [MASK] choice meaningful (64 patches, the lowest 1/8 = 8 are candidates); the blur
# keeps DINO's 0.1-2 px, which at 64 px is a strong blur (docs/own_data.md).
_base_ = ['./mst_vit-small-p16_1xb64-amp-coslr-100e_custom.py']

model = dict(
    backbone=dict(
        arch=dict(_delete_=True, embed_dims=192, num_layers=4, num_heads=3, feedforward_channels=768),
        img_size=64, patch_size=8, drop_path_rate=0.0),
    neck=dict(in_channels=192, hidden_channels=512, out_channels=256),
    head=dict(out_channels=256, warmup_teacher_temp_epochs=2),
    decoder=dict(in_channels=192, stride=8),
    teacher_momentum=0.99,  # a short run needs a faster teacher (the small-scale lab's finding)
)
train_dataloader = dict(
    batch_size=32, num_workers=2,
    dataset=dict(pipeline=[
        dict(type='LoadImageWithPath', skip_unreadable=False),
        dict(type='MultiCropViews', global_crop_size=64, local_crop_size=32, num_local_views=2, photometric=False,
             backend='cv2'),
        dict(type='PackInputs'),
    ]))

max_epochs = 20
optim_wrapper = dict(_delete_=True, type='OptimWrapper',
                     optimizer=dict(type='AdamW', lr=5e-4, betas=(0.9, 0.999), weight_decay=0.04),
                     clip_grad=dict(max_norm=3.0), paramwise_cfg=dict(bias_decay_mult=0.0, flat_decay_mult=0.0))
param_scheduler = [
    dict(type='LinearLR', start_factor=1e-3, by_epoch=True, begin=0, end=2, convert_to_iter_based=True),
    dict(type='CosineAnnealingLR', T_max=max_epochs - 2, eta_min=1e-6, by_epoch=True, begin=2, end=max_epochs,
         convert_to_iter_based=True),
    dict(type='CosineAnnealingParamScheduler', param_name='weight_decay', eta_min_ratio=10, by_epoch=True,
         begin=0, end=max_epochs, convert_to_iter_based=True),
]
train_cfg = dict(max_epochs=max_epochs)
default_hooks = dict(logger=dict(interval=10), checkpoint=dict(interval=5))
env_cfg = dict(dist_cfg=dict(backend='gloo'))
