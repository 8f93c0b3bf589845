# DINO's optimisation recipe (docs/design.md) for 100 epochs at a total batch of 1024 (8 x 128).
# AdamW, lr 5e-4 x batch / 256 with 10 warm-up epochs then cosine to 1e-6; weight decay cosine 0.04 -> 0.4 on
# every parameter but biases and 1-D weights (DINO's get_params_groups: the position embedding, the CLS and mask
# tokens are decayed); gradient clip 3.0. Mixed precision is switched on by the `-amp-` configs.
optim_wrapper = dict(
    type='OptimWrapper',
    optimizer=dict(type='AdamW', lr=5e-4 * 1024 / 256, betas=(0.9, 0.999), weight_decay=0.04),
    clip_grad=dict(max_norm=3.0),
    # DINO: no decay where `name.endswith('.bias') or param.ndim == 1`, decay everywhere else
    paramwise_cfg=dict(bias_decay_mult=0.0, flat_decay_mult=0.0),
)

max_epochs = 100
warmup_epochs = 10
param_scheduler = [
    dict(type='LinearLR', start_factor=1e-4, by_epoch=True, begin=0, end=warmup_epochs,
         convert_to_iter_based=True),
    dict(type='CosineAnnealingLR', T_max=max_epochs - warmup_epochs, eta_min=1e-6, by_epoch=True,
         begin=warmup_epochs, end=max_epochs, convert_to_iter_based=True),
    # per group: 0.04 -> 0.4 where the group decays, 0 -> 0 where it does not (biases, norms, tokens)
    dict(type='CosineAnnealingParamScheduler', param_name='weight_decay', eta_min_ratio=10, by_epoch=True,
         begin=0, end=max_epochs, convert_to_iter_based=True),
]

# mmengine's EpochBasedTrainLoop that can stop after any iteration (SIGTERM / SIGUSR1, an iteration checkpoint)
# and continue the epoch where it stopped, tensor for tensor (docs/preemption.md)
train_cfg = dict(type='ResumableEpochBasedTrainLoop', max_epochs=max_epochs)

custom_hooks = [
    dict(type='TeacherTempHook'),  # teacher temperature warm-up, schedule in model.head
    dict(type='FreezeLastLayerHook', freeze_epochs=1),  # DINO: prototypes frozen in the first epoch
    dict(type='CollapseWarningHook'),  # one WARNING line when the collapse monitors say so (docs/troubleshooting.md)
    dict(type='SkippedImagesHook'),  # with skip_unreadable=True: how many images each epoch skipped
]

# lr above is for 1024 images per iteration; `--auto-scale-lr` rescales it for another total batch.
auto_scale_lr = dict(base_batch_size=1024, enable=False)
