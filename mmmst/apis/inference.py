"""What a trained MST looks at: the teacher's CLS attention and the mask its generator draws, on given images."""

from typing import Optional, Tuple

import torch
from mmengine.config import Config


@torch.no_grad()
def teacher_attention_and_mask(
    model, images: torch.Tensor, seed: int = 0
) -> Tuple[torch.Tensor, Optional[torch.Tensor]]:
    """The teacher's last-layer CLS-to-patch attention and the mask drawn from it (paper eq. 4-5).

    Args:
        model: an ``MST`` (its teacher backbone must return CLS attention: ``MSTViT`` or ``MSTSwinTransformer``).
        images (Tensor): (B, C, H, W), normalised like the training views.
        seed (int): seed of the mask's random draws, so that a picture is the same on every run.

    Returns:
        tuple: (B, h, w) attention on the patch grid, and (B, h, w) bool mask (None without a mask generator).
    """
    out = model.teacher.module.backbone.encode(images, return_cls_attention=True)
    h, w = out.patch_map.shape[-2:]
    mask = None
    if model.mask_generator is not None:
        generator = torch.Generator(device=images.device).manual_seed(seed)
        mask = model.mask_generator(out.cls_attention, generator).view(-1, h, w)
    return out.cls_attention.view(-1, h, w), mask


@torch.no_grad()
def first_images(model, cfg: Config, num: int = 8, loader: str = 'knn_query_dataloader') -> torch.Tensor:
    """(num, C, H, W): the first ``num`` images of the config's ``loader``, normalised by the model's preprocessor."""
    from mmengine.registry import DefaultScope
    from mmengine.runner import Runner

    with DefaultScope.overwrite_default_scope(cfg.get('default_scope', 'mmpretrain')):
        data = next(iter(Runner.build_dataloader(cfg[loader], seed=0)))
    return model.data_preprocessor(data, False)['inputs'][:num]
