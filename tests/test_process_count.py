"""1 process = N processes: full MST on 2 gloo processes x B/2 images equals 1 process x B images.

DDP averages the gradients of the processes, the DINO centre averages the teacher logits of all processes, and
every loss term is a mean over the images of a process; so with equal halves, the two runs compute the same
loss, gradients and centre -- unless a layer normalises with the statistics of its process's batch. The decoder's
BatchNorm did (the second test shows the comparison failing with it); its default is now LayerNorm over channels (LN2d),
which has no batch statistics. The BatchNorm case is kept as the proof that the comparison can tell.
"""

import os.path as osp

import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp
from mmengine.config import Config
from mmengine.registry import DefaultScope

ROOT = osp.dirname(osp.dirname(osp.abspath(__file__)))
DEMO_CFG = osp.join(ROOT, 'configs/mst/mst_vit-4l128-p4_1xb64-coslr-5e_fashion-mnist.py')
BATCH = 8
NORMS = dict(default=None, bn=dict(type='BN'))


def build_mst(norm):
    """The demo's full MST (seeded), masking every candidate so that the masks do not depend on the RNG."""
    import mmmst  # noqa: F401
    from mmmst.registry import MODELS

    cfg = Config.fromfile(DEMO_CFG).model
    cfg.mask_generator.prob = 1.0
    if norm is not None:
        cfg.decoder.norm_cfg = norm
    torch.manual_seed(0)
    with DefaultScope.overwrite_default_scope('mmpretrain'):
        model = MODELS.build(cfg)
    model.init_weights()
    return model


def views(rank=0, world_size=1):
    """2 global 28 px + 2 local 12 px views of BATCH images; a process gets its contiguous share of the images."""
    gen = torch.Generator().manual_seed(1)
    full = [torch.randn(BATCH, 1, 28, 28, generator=gen) for _ in range(2)]
    full += [torch.randn(BATCH, 1, 12, 12, generator=gen) for _ in range(2)]
    share = BATCH // world_size
    return [v[rank * share : (rank + 1) * share] for v in full]


def one_step(model, inputs):
    """Loss terms, parameter gradients and the centre after one forward / backward."""
    losses = model(inputs, [None] * len(inputs[0]), mode='loss')
    module = getattr(model, 'module', model)
    loss, _ = module.parse_losses(losses)
    loss.backward()
    terms = {k: v.detach().clone() for k, v in losses.items() if k.startswith('loss')}
    grads = {n: p.grad.clone() for n, p in module.named_parameters() if p.grad is not None}
    return terms, grads, module.head.center.clone()


def _worker(rank, world_size, init_file, out_file):
    from mmmst.runtime.cpu_dist import CPUDistributedDataParallel

    torch.set_num_threads(1)
    dist.init_process_group('gloo', init_method=f'file://{init_file}', rank=rank, world_size=world_size)
    results = {}
    for name, norm in NORMS.items():
        model = CPUDistributedDataParallel(build_mst(norm))
        terms, grads, center = one_step(model, views(rank, world_size))
        for value in terms.values():  # the mean over processes: what 1 process computes over the whole batch
            dist.all_reduce(value)
            value /= world_size
        results[name] = (terms, grads, center)
    if rank == 0:
        torch.save(results, out_file)
    dist.barrier()
    dist.destroy_process_group()


@pytest.fixture(scope='module')
def one_and_two_processes(tmp_path_factory):
    """{norm: ((terms, grads, centre) on 1 process, the same on 2 gloo processes)}."""
    tmp = tmp_path_factory.mktemp('process_count')
    # fork: the children need this module's functions, and 'tests' is not an importable package here
    mp.start_processes(_worker, args=(2, str(tmp / 'init'), str(tmp / 'two.pth')), nprocs=2, start_method='fork')
    two = torch.load(tmp / 'two.pth', weights_only=False)
    return {name: (one_step(build_mst(norm), views()), two[name]) for name, norm in NORMS.items()}


def test_full_mst_on_two_processes_equals_one_process(one_and_two_processes):
    (terms1, grads1, center1), (terms2, grads2, center2) = one_and_two_processes['default']
    assert terms1.keys() == terms2.keys() == {'loss_dino', 'loss_restore'}
    for name in terms1:
        torch.testing.assert_close(terms2[name], terms1[name], rtol=1e-5, atol=1e-6, msg=name)
    torch.testing.assert_close(center2, center1, rtol=1e-5, atol=1e-7)
    assert grads1.keys() == grads2.keys() and 'mask_token' in {n.split('.')[-1] for n in grads1}
    for name in grads1:
        torch.testing.assert_close(grads2[name], grads1[name], rtol=1e-4, atol=1e-6, msg=name)


def test_per_process_batchnorm_in_the_decoder_breaks_the_equality(one_and_two_processes):
    """The comparison above can fail: a BatchNorm decoder gives other restoration losses and mask-token grads."""
    (terms1, grads1, _), (terms2, grads2, _) = one_and_two_processes['bn']
    assert not torch.allclose(terms2['loss_restore'], terms1['loss_restore'], rtol=1e-4, atol=1e-6)
    mask_token = next(n for n in grads1 if n.endswith('mask_token'))
    assert not torch.allclose(grads2[mask_token], grads1[mask_token], rtol=1e-4, atol=1e-6)
