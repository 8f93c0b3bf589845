# Ablation (paper table 4, "random"): every patch masked with probability 0.15 (paper eq. 3).
_base_ = '../mst_deit-small-p16_8xb128-amp-coslr-100e_in1k.py'
model = dict(mask_generator=dict(_delete_=True, type='RandomMaskGenerator', prob=0.15))
