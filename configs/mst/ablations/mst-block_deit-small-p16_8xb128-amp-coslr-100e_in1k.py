# Mask-strategy comparison (BEiT / iBOT block-wise masking): rectangles of at least 16 patches up to 10-50 % of
# the 14 x 14 grid per image, blind to the teacher's attention; decoder kept.
_base_ = '../mst_deit-small-p16_8xb128-amp-coslr-100e_in1k.py'
model = dict(mask_generator=dict(_delete_=True, type='BlockMaskGenerator', ratio=(0.1, 0.5), min_block=16))
