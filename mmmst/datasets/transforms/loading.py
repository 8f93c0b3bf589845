"""Image loading whose failures name the file."""

import multiprocessing
import os.path as osp
from typing import Optional

import numpy as np
from mmcv.transforms import LoadImageFromFile
from mmengine.logging import print_log
from PIL import Image

from mmmst.errors import MSTError
from mmmst.registry import TRANSFORMS


class UnreadableImageError(MSTError, OSError):
    """An image file is empty, truncated or not an image."""


@TRANSFORMS.register_module()
class LoadImageWithPath(LoadImageFromFile):
    """mmcv's ``LoadImageFromFile`` (same arguments) whose failures name the file.

    mmcv re-raises the decoder's own error (``cv2.error ... !buf.empty()`` for a zero-byte JPEG), which names no
    file; in a 1.28-million-image tree that is a day's search. Here the error is an :class:`UnreadableImageError`
    starting with the path. With ``skip_unreadable=True`` the image is skipped instead (mmengine's dataset then
    draws another sample), with a warning naming it and the count of images skipped so far by this process; a
    process that has tried ``NONE_READ_LIMIT`` images and read none stops with an error saying so (mmengine would
    otherwise retry 1000 times and say only "Cannot find valid image").

    An image file larger than ``max_pixels`` (a scan, a satellite or slide image) is never decoded in full: a JPEG
    is decoded shrunk by its decoder's own scaling (1/2 to 1/8, PIL's draft mode) to fit the limit, with a warning
    naming it; any other file, or a JPEG too large for 1/8, is unreadable (an error, or skipped and counted with
    ``skip_unreadable``). Only the file's header is read to know its size.

    Args:
        skip_unreadable (bool): skip unreadable images instead of stopping. Defaults to False.
        max_pixels (int): the most pixels decoded for one image. Defaults to PIL's limit (about 89 M pixels,
            ``PIL.Image.MAX_IMAGE_PIXELS``).
        **kwargs: mmcv's ``LoadImageFromFile`` arguments.
    """

    NONE_READ_LIMIT = 100

    def __init__(self, skip_unreadable: bool = False, max_pixels: int = 89_478_485, **kwargs):
        if not isinstance(max_pixels, int) or max_pixels < 1:
            raise ValueError(f'LoadImageWithPath: max_pixels must be a positive integer, got {max_pixels!r}')
        super().__init__(**kwargs)
        self.max_pixels = max_pixels
        self.skip_unreadable = skip_unreadable
        self.num_skipped = 0
        self.num_read = 0
        # every process's skips, summed: the dataloader workers forked from the main process share it
        # (``SkippedImagesHook`` logs it after each epoch); a pickled copy (spawned workers) counts on its own
        self.skipped_everywhere = multiprocessing.Value('l', 0) if skip_unreadable else None

    def __getstate__(self):
        state = dict(self.__dict__)
        state['skipped_everywhere'] = None  # shared memory travels by fork only
        return state

    def transform(self, results: dict) -> Optional[dict]:
        path = results['img_path']
        try:
            loaded = self._load_within_limit(results)
        except Exception as err:  # the decoder's, the file system's or mmcv's own assertion
            said = (str(err).strip().splitlines() or [''])[-1]
            if not self.skip_unreadable:
                raise UnreadableImageError(f'{path}: cannot read this image ({type(err).__name__}: {said})') from err
            self.num_skipped += 1
            if self.skipped_everywhere is not None:
                with self.skipped_everywhere.get_lock():
                    self.skipped_everywhere.value += 1
            if self.num_read == 0 and self.num_skipped >= self.NONE_READ_LIMIT:
                raise UnreadableImageError(
                    f'none of the {self.num_skipped} images tried could be read (the last: {path}: {said}); '
                    'skipping unreadable images cannot help: check the folder and its files'
                ) from err
            print_log(
                f'skipped unreadable image {path} ({type(err).__name__}: {said}); {self.num_skipped} skipped so far',
                logger='current',
                level=30,
            )
            return None
        self.num_read += 1
        return loaded

    def _load_within_limit(self, results: dict) -> dict:
        """mmcv's load, unless the file's header says it has more than ``max_pixels`` pixels (see the class)."""
        path = results['img_path']
        if not osp.isfile(path):  # another storage backend: mmcv reads it
            return super().transform(results)
        limit, Image.MAX_IMAGE_PIXELS = Image.MAX_IMAGE_PIXELS, None  # the header only: no decompression bomb yet
        try:
            with Image.open(path) as image:
                width, height = image.size
                if width * height <= self.max_pixels:
                    return super().transform(results)
                scale = next((f for f in (2, 4, 8) if (width // f) * (height // f) <= self.max_pixels), None)
                if image.format != 'JPEG' or scale is None:
                    raise ValueError(
                        f'{width} x {height} = {width * height / 1e6:.0f} M pixels, above the limit of '
                        f'{self.max_pixels / 1e6:.0f} M (max_pixels); shrink the file or raise max_pixels'
                    )
                gray = self.color_type == 'grayscale' or (self.color_type == 'unchanged' and image.mode == 'L')
                mode = 'L' if gray else 'RGB'
                image.draft(mode, (width // scale, height // scale))
                image = image.convert(mode)
                img = np.asarray(image)
        finally:
            Image.MAX_IMAGE_PIXELS = limit
        print_log(
            f'{path}: {width} x {height} pixels, above max_pixels ({self.max_pixels}): decoded at 1/{scale} '
            f'({img.shape[1]} x {img.shape[0]})',
            logger='current',
            level=30,
        )
        if img.ndim == 3:  # mmcv's decoders give BGR
            img = img[..., ::-1]
        img = np.ascontiguousarray(img.astype(np.float32) if self.to_float32 else img)
        results.update(img=img, img_shape=img.shape[:2], ori_shape=(height, width))
        return results
