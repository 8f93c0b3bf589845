"""Layer-wise learning-rate decay for a ViT backbone inside any detector, segmentor or classifier."""

from functools import partial

from mmpretrain.engine.optimizers import LearningRateDecayOptimWrapperConstructor

from mmmst.registry import OPTIM_WRAPPER_CONSTRUCTORS


@OPTIM_WRAPPER_CONSTRUCTORS.register_module()
class BackboneLayerDecayOptimWrapperConstructor(LearningRateDecayOptimWrapperConstructor):
    """mmpretrain's layer-wise lr decay (BEiT, MAE, ViTDet fine-tuning), with the depth read from ``model.backbone``.

    mmpretrain's constructor asks the whole model for ``get_layer_depth``, which only mmpretrain's classifiers
    have; mmdet's and mmseg's own constructors recognise a ViT by its class name (``BEiT``, ``MAE``) and refuse
    ``MSTViT``. This one asks the backbone (mmpretrain's ``VisionTransformer.get_layer_depth``, inherited by
    ``MSTViT``), so a parameter of block ``i`` of an L-block ViT gets

        lr = base_lr * layer_decay_rate ** (L + 1 - depth),  depth = 0 for patch/position/CLS embeddings,
                                                             i + 1 for block i, L + 1 for everything else,

    i.e. the neck and heads get ``base_lr``. ``paramwise_cfg`` is mmpretrain's: ``layer_decay_rate``,
    ``bias_decay_mult``, ``norm_decay_mult``, ``flat_decay_mult``, ``custom_keys`` (``decay_mult`` only).
    """

    def add_params(self, params, module, prefix='', get_layer_depth=None, **kwargs):
        if get_layer_depth is None and prefix == '' and not hasattr(module, 'get_layer_depth'):
            backbone = getattr(module, 'backbone', None)
            if not hasattr(backbone, 'get_layer_depth'):
                raise TypeError(
                    f'{type(self).__name__}: {type(module).__name__}.backbone '
                    f'({type(backbone).__name__}) has no get_layer_depth(); use it with a ViT backbone'
                )
            get_layer_depth = partial(backbone.get_layer_depth, prefix='backbone.')
        super().add_params(params, module, prefix=prefix, get_layer_depth=get_layer_depth, **kwargs)
