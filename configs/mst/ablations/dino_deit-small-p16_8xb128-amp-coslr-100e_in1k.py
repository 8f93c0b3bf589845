# Ablation (paper table 4, "none"): DINO, no masking and no decoder.
_base_ = '../mst_deit-small-p16_8xb128-amp-coslr-100e_in1k.py'
model = dict(mask_generator=None, decoder=None)
