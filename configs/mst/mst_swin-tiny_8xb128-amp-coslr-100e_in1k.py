# MST, Swin-T, ImageNet-1k, 100 epochs, 8 GPUs x 128 images (same hyper-parameters as DeiT-S, as the paper).
_base_ = [
    '../_base_/models/mst_swin-tiny.py',
    '../_base_/datasets/imagenet_bs128_mst.py',
    '../_base_/schedules/mst_adamw_coslr-100e.py',
    '../_base_/default_runtime.py',
]

optim_wrapper = dict(type='AmpOptimWrapper', loss_scale='dynamic')  # DINO: mixed precision
# an epoch is 1,251 iterations (20 minutes and more): also a checkpoint every 1,000 iterations, the last 2 kept
# (SIGTERM / SIGUSR1 save at once; docs/preemption.md)
default_hooks = dict(checkpoint=dict(iter_interval=1000, max_keep_iter_ckpts=2))
