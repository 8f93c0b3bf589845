# Mask-strategy comparison (AttMask-High, ECCV 2022): mask the most attended 10-50 % of the patches per image,
# the opposite of MST's low-attention candidates; decoder kept. `hint=0.1` gives AttMask-Hint.
_base_ = '../mst_deit-small-p16_8xb128-amp-coslr-100e_in1k.py'
model = dict(mask_generator=dict(_delete_=True, type='HighAttentionMaskGenerator', ratio=(0.1, 0.5)))
