"""Image loading whose failures name the file."""

import multiprocessing
from typing import Optional

from mmcv.transforms import LoadImageFromFile
from mmengine.logging import print_log

from mmmst.registry import TRANSFORMS


class UnreadableImageError(OSError):
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

    Args:
        skip_unreadable (bool): skip unreadable images instead of stopping. Defaults to False.
        **kwargs: mmcv's ``LoadImageFromFile`` arguments.
    """

    NONE_READ_LIMIT = 100

    def __init__(self, skip_unreadable: bool = False, **kwargs):
        super().__init__(**kwargs)
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
            loaded = super().transform(results)
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
