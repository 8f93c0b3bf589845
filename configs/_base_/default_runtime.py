# Runtime shared by every mmmst config (mmpretrain's default_runtime, plus mmmst's registration).
default_scope = 'mmpretrain'
custom_imports = dict(imports=['mmmst'], allow_failed_imports=False)

default_hooks = dict(
    timer=dict(type='IterTimerHook'),
    logger=dict(type='LoggerHook', interval=50),
    param_scheduler=dict(type='ParamSchedulerHook'),
    # every epoch (an ImageNet epoch is hours), the last 3 kept; written to a temporary file and renamed, the
    # oldest removed only afterwards, so a kill at any moment leaves a complete checkpoint to resume from; with
    # every process's python / numpy / torch generator states, so a resumed run continues the same random stream
    checkpoint=dict(type='AtomicCheckpointHook', interval=1, max_keep_ckpts=3),
    sampler_seed=dict(type='DistSamplerSeedHook'),
    visualization=dict(type='VisualizationHook', enable=False),
    # no checkpoint with a NaN / Inf weight is ever written (a NaN loss already stops the run: MST.parse_losses)
    finite_checkpoint=dict(type='FiniteCheckpointHook'),
)

env_cfg = dict(
    cudnn_benchmark=False,
    mp_cfg=dict(mp_start_method='fork', opencv_num_threads=0),
    dist_cfg=dict(backend='nccl'),
)

vis_backends = [dict(type='LocalVisBackend')]
visualizer = dict(type='UniversalVisualizer', vis_backends=vis_backends)

# No 'global' window: asking for one makes mmengine build the training loop (and read the training data)
# at the end of a test run.
log_processor = dict(window_size=10)
log_level = 'INFO'
load_from = None
resume = False
randomness = dict(seed=0, diff_rank_seed=True)
