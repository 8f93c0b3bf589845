# Continue from a public ViT-S/16 (DINO's, DeiT-S, timm's vit_small_patch16_224) on a folder of your own images, on
# GPUs: the ViT-S/16 folder recipe (mst_vit-small-p16_1xb64-amp-coslr-100e_custom.py) started from the converted
# weights, with the levers of the CPU recipe (mst_vit-4l192-p8_1xb32-continue-coslr-20e_custom-64px.py; measured at
# CPU scale in docs/results.md, not yet on GPUs) and a third of the epochs:
#   python tools/model_converters/timm_to_mst.py dino_deitsmall16_pretrain.pth work_dirs/start_mst.pth \
#       --config configs/mst/mst_vit-small-p16_1xb64-amp-continue-coslr-30e_custom.py
#   bash tools/dist_train.sh configs/mst/mst_vit-small-p16_1xb64-amp-continue-coslr-30e_custom.py <gpus> \
#       --cfg-options train_dataloader.dataset.data_root=<your folder>
_base_ = ['./mst_vit-small-p16_1xb64-amp-coslr-100e_custom.py']

model = dict(
    backbone=dict(init_cfg=dict(type='Pretrained', checkpoint='work_dirs/start_mst.pth', prefix='backbone.')),
    head=dict(warmup_teacher_temp_epochs=9),  # DINO's 30 of 100 epochs, scaled to 30
)

# a tenth of DINO's rule (5e-4 x total batch / 256), scaled by mmengine from the total batch at start
optim_wrapper = dict(optimizer=dict(lr=5e-5))
max_epochs = 30
param_scheduler = [
    dict(type='LinearLR', start_factor=1e-3, by_epoch=True, begin=0, end=2, convert_to_iter_based=True),
    dict(
        type='CosineAnnealingLR',
        T_max=max_epochs - 2,
        eta_min=1e-6,
        by_epoch=True,
        begin=2,
        end=max_epochs,
        convert_to_iter_based=True,
    ),
    dict(
        type='CosineAnnealingParamScheduler',
        param_name='weight_decay',
        eta_min_ratio=10,
        by_epoch=True,
        begin=0,
        end=max_epochs,
        convert_to_iter_based=True,
    ),
]
train_cfg = dict(max_epochs=max_epochs)
# head first: the backbone frozen in the first epoch while the fresh projection head and decoder learn
custom_hooks = [
    dict(type='TeacherTempHook'),
    dict(type='FreezeLastLayerHook', freeze_epochs=1),
    dict(type='FreezeLastLayerHook', freeze_epochs=1, module_name='backbone'),
    dict(type='CollapseWarningHook'),
    dict(type='SkippedImagesHook'),
]
