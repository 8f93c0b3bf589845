# MST, ViT-S/16 (DeiT-S), on a folder of your own unlabeled images, 64 images per GPU, mixed precision.
#   bash tools/dist_train.sh configs/mst/mst_vit-small-p16_1xb64-amp-coslr-100e_custom.py <gpus> \
#       --cfg-options train_dataloader.dataset.data_root=<your folder>
# The walkthrough, from the folder to a timm checkpoint: docs/own_data.md.
_base_ = [
    '../_base_/models/mst_deit-small-p16.py',
    '../_base_/datasets/custom-folder_bs64_mst.py',
    '../_base_/schedules/mst_adamw_coslr-100e.py',
    '../_base_/default_runtime.py',
]

# DINO's rule, lr = 5e-4 x total batch / 256: given for a total batch of 256 and scaled at start by mmengine to
# the real one (GPUs x 64), which the log prints ("LR is set based on batch size of 256 ...").
optim_wrapper = dict(type='AmpOptimWrapper', loss_scale='dynamic', optimizer=dict(lr=5e-4))
auto_scale_lr = dict(base_batch_size=256, enable=True)
