# Ablation (paper table 5): attention-guided masking, candidates 1/4, candidate probability 0.1.
_base_ = '../mst_deit-small-p16_8xb128-amp-coslr-100e_in1k.py'
model = dict(mask_generator=dict(num=4, prob=0.1))
