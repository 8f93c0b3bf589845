# The demo (`make demo`): MST with a 2-layer, 128-wide ViT (patch 4) on Fashion-MNIST, 10 epochs on a laptop-class CPU.
# The 4-layer recipe it inherits (the one of the ablation tables in projects/small_scale_lab/experiment_log.md) with three changes, measured
# there ("Depth, width, learning rate and the epochs a faster step buys"): half the depth makes a step about half as
# long, which buys 10 epochs in the time of 5 (11.7 minutes on 2 idle cores), and lr 1e-3 instead of DINO's
# rule (1.25e-4 at batch 64) moves a network this small further in 1,560 iterations.
_base_ = ['./mst_vit-4l128-p4_1xb64-coslr-5e_fashion-mnist.py']

model = dict(backbone=dict(arch=dict(num_layers=2)))

max_epochs = 10
optim_wrapper = dict(optimizer=dict(lr=1e-3))
param_scheduler = [
    dict(type='LinearLR', start_factor=1e-3, by_epoch=True, begin=0, end=1, convert_to_iter_based=True),
    dict(type='CosineAnnealingLR', T_max=max_epochs - 1, eta_min=1e-5, by_epoch=True, begin=1, end=max_epochs,
         convert_to_iter_based=True),
    dict(type='CosineAnnealingParamScheduler', param_name='weight_decay', eta_min_ratio=10, by_epoch=True,
         begin=0, end=max_epochs, convert_to_iter_based=True),
]
train_cfg = dict(max_epochs=max_epochs)
default_hooks = dict(checkpoint=dict(interval=max_epochs))
