# Continue from a pretrained backbone on a folder of your own images, on a CPU: the 64-px folder recipe
# (mst_vit-4l192-p8_1xb32-coslr-20e_custom-64px.py) started from weights that timm_to_mst.py wrote, with the levers
# that keep what the backbone knows (docs/own_data.md, "From a public backbone"; measured in docs/results.md):
#   python tools/model_converters/timm_to_mst.py <timm / DINO / DeiT checkpoint> work_dirs/start_mst.pth \
#       --config configs/mst/mst_vit-4l192-p8_1xb32-continue-coslr-20e_custom-64px.py
#   python tools/train.py configs/mst/mst_vit-4l192-p8_1xb32-continue-coslr-20e_custom-64px.py \
#       --cfg-options train_dataloader.dataset.data_root=<your folder>
_base_ = ['./mst_vit-4l192-p8_1xb32-coslr-20e_custom-64px.py']

# the weights timm_to_mst.py wrote; the student starts from them and MST starts its teacher equal to the student.
# The projection head and the decoder start fresh, the [MASK] token too.
model = dict(backbone=dict(init_cfg=dict(type='Pretrained', checkpoint='work_dirs/start_mst.pth', prefix='backbone.')))

# a tenth of the from-scratch learning rate: smaller steps away from the start
optim_wrapper = dict(optimizer=dict(lr=5e-5))
# head first: the backbone (student, so the teacher too) does not move in the first epoch while the fresh
# projection head and decoder learn from its features; DINO's last-layer freeze stays as it is
custom_hooks = [
    dict(type='TeacherTempHook'),
    dict(type='FreezeLastLayerHook', freeze_epochs=1),
    dict(type='FreezeLastLayerHook', freeze_epochs=1, module_name='backbone'),
    dict(type='CollapseWarningHook'),
    dict(type='SkippedImagesHook'),
]
