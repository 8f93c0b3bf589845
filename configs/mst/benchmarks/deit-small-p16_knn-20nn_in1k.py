# k-NN evaluation of an MST DeiT-S/16 checkpoint (DINO protocol: teacher CLS, L2-normalised, 20-NN, T = 0.07).
#   python tools/analysis_tools/knn_eval.py configs/mst/benchmarks/deit-small-p16_knn-20nn_in1k.py <checkpoint>
_base_ = [
    '../../_base_/models/mst_deit-small-p16.py',
    '../../_base_/datasets/imagenet_knn.py',
    '../../_base_/default_runtime.py',
]
