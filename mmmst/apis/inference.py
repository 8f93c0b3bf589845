"""What a trained MST looks at: the teacher's CLS attention and the mask its generator draws, on given images."""

from typing import Optional, Tuple

import torch
from mmengine.config import Config

from mmmst.errors import ConfigError


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
    generator = torch.Generator(device=images.device).manual_seed(seed)
    out, mask = model.teacher_and_mask(images, return_cls_attention=True, generator=generator)
    h, w = out.patch_map.shape[-2:]
    return out.cls_attention.view(-1, h, w), None if mask is None else mask.view(-1, h, w)


def image_loader_cfg(cfg: Config, num: int = 8) -> dict:
    """A loader of single, unaugmented images for pictures: the config's ``knn_query_dataloader`` or
    ``test_dataloader``, or, in a pretraining config that has neither, its training images resized and centre-cropped
    to the global view size (the transforms before ``MultiCropViews`` are kept: loading, conversion). The resize is
    PIL's bicubic, which averages over the shrunk pixels (antialiased), as the ImageNet k-NN and linear configs, timm
    and mmpretrain's evaluation pipelines do: OpenCV's bilinear resize samples 4 pixels per output pixel, and a large
    photo of fine texture then aliases into patterns that change its features.

    Raises:
        ConfigError: the config has none of the three loaders.
    """
    import copy

    for name in ('knn_query_dataloader', 'test_dataloader'):
        if cfg.get(name):
            return cfg[name]
    if not cfg.get('train_dataloader'):
        raise ConfigError(f'{cfg.filename} has no knn_query_dataloader, test_dataloader or train_dataloader')
    loader = copy.deepcopy(cfg.train_dataloader)
    pipeline = list(loader.dataset.pipeline)
    index = next(i for i, t in enumerate(pipeline) if t['type'] == 'MultiCropViews')
    size = pipeline[index]['global_crop_size']
    loader.dataset.pipeline = pipeline[:index] + [
        dict(type='ResizeEdge', scale=size, edge='short', backend='pillow', interpolation='bicubic'),
        dict(type='CenterCrop', crop_size=size),
        dict(type='PackInputs'),
    ]
    loader.update(batch_size=num, num_workers=0, persistent_workers=False, drop_last=False)
    loader.sampler = dict(type='DefaultSampler', shuffle=False)
    return loader


@torch.no_grad()
def first_images(model, cfg: Config, num: int = 8) -> torch.Tensor:
    """(num, C, H, W): the first ``num`` images of :func:`image_loader_cfg`, normalised by the model's preprocessor."""
    from mmengine.registry import DefaultScope
    from mmengine.runner import Runner

    with DefaultScope.overwrite_default_scope(cfg.get('default_scope', 'mmpretrain')):
        data = next(iter(Runner.build_dataloader(image_loader_cfg(cfg, num), seed=0)))
    return model.data_preprocessor(data, False)['inputs'][:num]
