# MST, Swin-T, ImageNet-1k, 300 epochs (paper: +1.8 linear top-1 over MoBY).
_base_ = [
    '../_base_/models/mst_swin-tiny.py',
    '../_base_/datasets/imagenet_bs128_mst.py',
    '../_base_/schedules/mst_adamw_coslr-300e.py',
    '../_base_/default_runtime.py',
]

optim_wrapper = dict(type='AmpOptimWrapper', loss_scale='dynamic')  # DINO: mixed precision
