"""Distributed runs on machines without a GPU (gloo), with the same launchers and arguments as on GPUs.

mmengine 0.10.7's ``pytorch`` launcher calls ``torch.cuda.set_device`` before starting the process group, and
its Runner wraps the model in DDP with ``device_ids=[LOCAL_RANK]``; both fail where no GPU is visible. So on
such a machine the tools start the gloo process group themselves (the Runner then finds it initialised and
skips its own set-up) and select :class:`CPUDistributedDataParallel` as the model wrapper.
"""

import gc
import logging
import os
import re
import sys

import torch
import torch.distributed as dist
from mmengine.model import MMDistributedDataParallel, revert_sync_batchnorm

from mmmst.registry import MODEL_WRAPPERS

#: the value of ``model_wrapper_cfg.type`` for CPU processes (reachable from mmdet / mmseg scopes too)
CPU_WRAPPER = 'mmpretrain.CPUDistributedDataParallel'


def init_cpu_process_group(launcher: str) -> bool:
    """Start a gloo process group for ``launcher='pytorch'`` or ``'slurm'`` without CUDA; True if it did.

    For slurm, the rank, world size and master address come from slurm's variables as in mmengine's slurm
    launcher (``SLURM_PROCID``, ``SLURM_NTASKS``, ``SLURM_LOCALID``, the first host of ``SLURM_NODELIST`` unless
    ``MASTER_ADDR`` is set; ``MASTER_PORT`` defaults to 29500).
    """
    if launcher not in ('pytorch', 'slurm') or torch.cuda.is_available() or dist.is_initialized():
        return False
    if launcher == 'slurm':
        os.environ['RANK'] = os.environ['SLURM_PROCID']
        os.environ['WORLD_SIZE'] = os.environ['SLURM_NTASKS']
        os.environ['LOCAL_RANK'] = os.environ.get('SLURM_LOCALID', '0')
        os.environ.setdefault('MASTER_PORT', '29500')
        os.environ.setdefault('MASTER_ADDR', first_slurm_host(os.environ['SLURM_NODELIST']))
    dist.init_process_group(backend='gloo', init_method='env://')
    return True


def first_slurm_host(nodelist: str) -> str:
    """The first host of a slurm node list (what ``scontrol show hostname <list> | head -n1`` prints).

    ``node07`` -> ``node07``; ``node[03-05,9],gpu1`` -> ``node03``; ``rack1-n[001-004]`` -> ``rack1-n001``.
    """
    first = re.match(r'[^,\[]*(\[[^\]]*\])?', nodelist).group(0)
    if '[' not in first:
        return first
    prefix, ranges = first[:-1].split('[', 1)
    return prefix + re.split(r'[-,]', ranges, maxsplit=1)[0]


def close_cpu_process_group(exit_code: int = 0, before_exit=None) -> None:
    """End a gloo CPU process cleanly: wait for every process, close the group, flush, and leave.

    Seen on this stack (torch 2.14, gloo, 2 CPU processes), rarely and under load: a process that had finished its
    work aborted while the interpreter shut down ('terminate called without an active exception', SIGABRT), after
    the metrics were printed, so the launcher reported a failure. The abort comes from C++ destructors running in
    an arbitrary order at exit; so after the barrier and ``destroy_process_group`` the process flushes its streams
    and logs and exits with ``os._exit(exit_code)``, which skips ``atexit``: what must run before the exit (the work
    dir's lock released) is ``before_exit``, called once every process has reached this point. Call it last, only on
    the gloo path.
    """
    if not dist.is_initialized():
        return
    gc.collect()  # the DDP wrapper (and its reducer) go before the group they use
    dist.barrier()
    dist.destroy_process_group()
    if before_exit is not None:
        before_exit()
    logging.shutdown()
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(exit_code)


@MODEL_WRAPPERS.register_module()
class CPUDistributedDataParallel(MMDistributedDataParallel):
    """mmengine's DDP wrapper for CPU processes: no device ids, and per-process BatchNorm instead of SyncBN.

    ``SyncBatchNorm`` runs only on GPUs; on CPU processes it becomes BatchNorm over each process's batch (what
    mmengine does for a single process), so a gloo run checks the config, data and code path, not the
    statistics of SyncBN. mmengine's defaults for its own wrapper apply (``broadcast_buffers=False``).
    """

    def __init__(self, module, device_ids=None, **kwargs):
        kwargs.setdefault('broadcast_buffers', False)
        super().__init__(module=revert_sync_batchnorm(module), device_ids=None, **kwargs)


def use_cpu_wrapper(cfg) -> None:
    """Point ``cfg.model_wrapper_cfg`` at :class:`CPUDistributedDataParallel`, keeping its other options."""
    wrapper = dict(cfg.get('model_wrapper_cfg') or {})
    wrapper.pop('device_ids', None)
    if 'find_unused_parameters' in cfg and 'find_unused_parameters' not in wrapper:
        wrapper['find_unused_parameters'] = cfg.find_unused_parameters
    cfg.model_wrapper_cfg = dict(wrapper, type=CPU_WRAPPER)
