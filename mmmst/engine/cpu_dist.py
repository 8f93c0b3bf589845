"""Distributed runs on CPU-only machines (gloo).

mmengine 0.10.7's ``pytorch`` launcher calls ``torch.cuda.set_device`` before starting the process group, which
fails where no GPU is visible. When that is the case, start the gloo process group here; the Runner then finds it
initialised and skips its own set-up.
"""

import torch
import torch.distributed as dist


def init_cpu_process_group(launcher: str) -> bool:
    """Start a gloo process group for ``launcher='pytorch'`` without CUDA; True if it did."""
    if launcher != 'pytorch' or torch.cuda.is_available() or dist.is_initialized():
        return False
    dist.init_process_group(backend='gloo', init_method='env://')
    return True
