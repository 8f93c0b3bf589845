r"""Training-step cost of MST against DINO (same network, same views), and of the teacher's CLS-attention row.

    python tools/analysis_tools/benchmark_step.py                         # DeiT-S/16, 2 x 224 + 8 x 96 views
    python tools/analysis_tools/benchmark_step.py --batch 64 --locals 2 \
        --config configs/mst/mst_vit-2l128-p4_1xb64-coslr-10e_fashion-mnist.py  # the demo model, a CPU look
    python tools/analysis_tools/benchmark_step.py --amp                   # on a GPU, mixed precision

Prints seconds per iteration for DINO (no mask, no decoder) and MST (attention-guided mask + decoder), the median
of ``--rounds`` interleaved rounds, their ratio measured in the same run, and the teacher forward with and without
the CLS-attention row. ``--baseline-ema`` adds both arms with mmpretrain's ``CosineEMA`` as the teacher's update.

    python tools/analysis_tools/benchmark_step.py --batch 64 --locals 2 --resumable \
        --config configs/mst/mst_vit-2l128-p4_1xb64-coslr-10e_fashion-mnist.py

    python tools/analysis_tools/benchmark_step.py --count-ops --batch 4 --locals 2

``--count-ops`` counts instead of timing, per arm (DINO mode, mask only, full MST): the aten ops of one training
step (about one kernel launch each on a GPU), those of the forward passes and losses (``MST.loss``), and the ops that
make a GPU wait for the device (``.item()``, ``bool(tensor)``, boolean indexing, ``nonzero``, ...), each with the
line that issued it. AdamW's step counters, which stay on the host in a GPU run, are left out. Counts, unlike
seconds, are the same on any machine.

``--resumable`` adds what being resumable at any iteration costs per iteration, against the MST step of the same
run: the stop-signal check (alone, and as the MAX all-reduce over 2 gloo processes that every iteration does in a
distributed run), a dataloader worker's random states (taken, pickled to the main process, taken out of the
batch) and the sampler's copy of its epoch order (once an epoch, shared by the epoch's iterations;
``--samples-per-rank``, default an ImageNet epoch over 8 processes).
"""

import argparse
import os
import os.path as osp
import pickle
import time

import torch

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
CONFIG = osp.join(ROOT, 'configs/mst/mst_deit-small-p16_8xb128-amp-coslr-100e_in1k.py')


def timed(fn, warmup, iters, device):
    for _ in range(warmup):
        fn()
    if device.type == 'cuda':
        torch.cuda.synchronize()
    start = time.perf_counter()
    for _ in range(iters):
        fn()
    if device.type == 'cuda':
        torch.cuda.synchronize()
    return (time.perf_counter() - start) / iters


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('--config', default=CONFIG)
    parser.add_argument('--batch', type=int, default=32)
    parser.add_argument('--locals', type=int, default=8)
    parser.add_argument('--iters', type=int, default=5)
    parser.add_argument('--warmup', type=int, default=2)
    parser.add_argument('--amp', action='store_true')
    parser.add_argument('--resumable', action='store_true', help='also measure the cost of being resumable')
    parser.add_argument('--samples-per-rank', type=int, default=1281167 // 8)
    parser.add_argument('--count-ops', action='store_true', help='count aten ops and host syncs instead of timing')
    parser.add_argument('--rounds', type=int, default=3, help='interleaved rounds of --iters steps per arm')
    parser.add_argument(
        '--baseline-ema', action='store_true', help="also time each arm with mmpretrain's CosineEMA as the teacher"
    )
    args = parser.parse_args(argv)

    from mmengine.config import Config
    from mmengine.logging import MessageHub
    from mmengine.optim import build_optim_wrapper
    from mmengine.registry import init_default_scope
    from mmpretrain.registry import MODELS

    import mmmst  # noqa: F401
    from mmmst.dino_recipe import NUM_GLOBAL_VIEWS

    cfg = Config.fromfile(args.config)
    init_default_scope('mmpretrain')
    MessageHub.get_current_instance().update_info('max_iters', 10_000)
    device = torch.device('cuda' if torch.cuda.is_available() else 'cpu')
    views = next(t for t in cfg.train_dataloader.dataset.pipeline if t['type'] == 'MultiCropViews')
    size, local_size = views['global_crop_size'], views['local_crop_size']
    channels = cfg.model.backbone.get('in_channels', 3)
    inputs = [torch.randn(args.batch, channels, size, size, device=device) for _ in range(2)]
    inputs += [torch.randn(args.batch, channels, local_size, local_size, device=device) for _ in range(args.locals)]
    data = dict(inputs=inputs, data_samples=None)
    wrapper = dict(type='AmpOptimWrapper' if args.amp else 'OptimWrapper', optimizer=dict(type='AdamW', lr=1e-4))

    def build(overrides):
        model_cfg = cfg.model.copy()
        model_cfg.update(overrides)
        model = MODELS.build(model_cfg).to(device).train()
        return model, build_optim_wrapper(model, wrapper)

    def teacher_time(backbone, with_row):
        views = torch.cat(inputs[:NUM_GLOBAL_VIEWS])  # what the teacher sees
        with torch.no_grad(), torch.autocast(device.type, enabled=args.amp):
            return timed(lambda: backbone.encode(views, return_cls_attention=with_row), args.warmup, args.iters, device)

    if args.count_ops:
        print_op_counts({arm: build(overrides) for arm, overrides in ARMS.items()}, data)
        return
    arms = {'DINO': ARMS['DINO mode'], 'MST': ARMS['full MST']}
    built = {arm: build(overrides) for arm, overrides in arms.items()}
    if args.baseline_ema:  # the same arms with mmpretrain's CosineEMA as the teacher's update (one sync per weight)
        from mmpretrain.models.utils import CosineEMA

        for arm in arms:
            model, optim = build(arms[arm])
            model.teacher = CosineEMA(model._student(), momentum=model.teacher.momentum, end_momentum=0.0)
            built[f'{arm} (CosineEMA)'] = model.to(device).train(), optim
    rounds = {arm: [] for arm in built}
    for model, optim in built.values():  # warm-up: the optimizer's state, the teacher's first copy
        for _ in range(args.warmup):
            model.train_step(data, optim)
    for r in range(args.rounds):  # interleaved: a slower moment of a shared machine hits every arm alike
        # and in alternating order: the arm timed first in a round was measured up to 5 % slower on the CPU
        for arm, (model, optim) in list(built.items())[:: -1 if r % 2 else 1]:
            rounds[arm].append(timed(lambda m=model, o=optim: m.train_step(data, o), 0, args.iters, device))
    results = {arm: sorted(times)[len(times) // 2] for arm, times in rounds.items()}
    for arm, seconds in results.items():
        print(
            f'{arm:17s} {seconds:.3f} s/iter ({args.batch} images, 2 x {size} px + {args.locals} x '
            f'{local_size} px views, {device.type}{", amp" if args.amp else ""}; median of {args.rounds} rounds)',
            flush=True,
        )
    model = built['MST'][0]
    plain = teacher_time(model.teacher.module.backbone, with_row=False)
    with_row = teacher_time(model.teacher.module.backbone, with_row=True)
    print(f'MST / DINO step time: {results["MST"] / results["DINO"]:.3f}')
    if args.baseline_ema:
        for arm in arms:
            print(f'{arm} step, TeacherEMA / CosineEMA: {results[arm] / results[f"{arm} (CosineEMA)"]:.3f}')
        updates = {name: [] for name in ('MST', 'MST (CosineEMA)')}
        for r in range(args.rounds):  # the teacher's update alone, interleaved, in alternating order
            for name in list(updates)[:: -1 if r % 2 else 1]:
                m = built[name][0]
                updates[name].append(timed(lambda m=m: m.teacher.update_parameters(m._student()), 0, 20, device))
        new, old = (sorted(updates[n])[args.rounds // 2] for n in updates)
        print(
            f"the teacher's update alone: TeacherEMA {new * 1e3:.2f} ms, CosineEMA {old * 1e3:.2f} ms ({new / old:.3f})"
        )
    print(
        f'teacher forward with / without the CLS-attention row: {with_row / plain:.3f} '
        f'({plain * 1e3:.1f} ms -> {with_row * 1e3:.1f} ms)'
    )
    if args.resumable:
        resumable_cost(results['MST'], args.batch, args.samples_per_rank)


#: the arms compared: the same network, with MST's parts switched off
ARMS = {
    'DINO mode': dict(mask_generator=None, decoder=None),
    'mask only': dict(decoder=None),
    'full MST': {},
}


def print_op_counts(built: dict, data: dict) -> None:
    """A table of aten ops and host syncs per training step for each arm, then where each sync comes from."""
    from mmmst.runtime.op_counter import count_train_step

    counts = {arm: count_train_step(model, optim, data) for arm, (model, optim) in built.items()}
    header = ('aten ops/step', 'forward + loss', 'syncs in forward + loss', 'syncs/step')
    print(f'{"arm":10s} {header[0]:>14s} {header[1]:>15s} {header[2]:>24s} {header[3]:>11s}')
    for arm, c in counts.items():
        forward = c.ops['forward + loss']
        print(
            f'{arm:10s} {sum(c.ops.values()):14,d} {forward:15,d} {c.sync_count("forward + loss"):24d} '
            f'{c.sync_count():11d}'
        )
    for arm, c in counts.items():
        for (phase, op, where), n in sorted(c.syncs.items()):
            print(f'  {arm}: {n} x {op} in {phase} at {where}')


def resumable_cost(step: float, batch: int, samples_per_rank: int) -> None:
    """Per-iteration cost of ResumableEpochBasedTrainLoop + AtomicCheckpointHook's signal check, against ``step``."""
    import torch.multiprocessing as mp

    from mmmst.datasets import ResumableSampler
    from mmmst.runtime.preemption import StopRequest
    from mmmst.runtime.random_states import WORKER_STATES_KEY, random_states

    repeats = 2000
    stop = StopRequest()
    check = timed(stop.agreed, 10, repeats, torch.device('cpu'))

    def worker_states():  # in the worker, then across the process boundary, then out of the batch
        batch_dict = {WORKER_STATES_KEY: random_states()}
        pickle.loads(pickle.dumps(batch_dict)).pop(WORKER_STATES_KEY)

    states = timed(worker_states, 10, repeats // 4, torch.device('cpu'))
    sampler = ResumableSampler(range(samples_per_rank), shuffle=False, seed=0)
    order = timed(lambda: list(sampler), 1, 3, torch.device('cpu'))
    plain = timed(lambda: list(iter(range(samples_per_rank))), 1, 3, torch.device('cpu'))
    order_per_iter = max(order - plain, 0.0) / max(samples_per_rank // batch, 1)

    port = str(29500 + os.getpid() % 1000)
    with mp.get_context('spawn').Manager() as manager:
        seconds = manager.list()
        mp.spawn(_all_reduce_check, args=(port, repeats, seconds), nprocs=2, join=True)
        all_reduce = max(seconds)
    total = all_reduce + states + order_per_iter
    print(f'resumable, per iteration (MST step {step * 1e3:.1f} ms):')
    for name, cost in (
        ('stop-signal check, 1 process', check),
        ('stop-signal check, MAX all-reduce over 2 gloo processes', all_reduce),
        ("a dataloader worker's random states, taken and carried", states),
        (
            f"the sampler's order copy, {samples_per_rank} samples / {samples_per_rank // batch} iterations",
            order_per_iter,
        ),
    ):
        print(f'  {name}: {cost * 1e6:.1f} us ({100 * cost / step:.3f} % of a step)')
    print(f'  total (2 processes, workers): {total * 1e6:.1f} us = {100 * total / step:.3f} % of a step')


def _all_reduce_check(rank, port, repeats, seconds):
    import torch.distributed as dist

    from mmmst.runtime.preemption import StopRequest

    os.environ.update(MASTER_ADDR='127.0.0.1', MASTER_PORT=port)
    dist.init_process_group('gloo', rank=rank, world_size=2)
    stop = StopRequest()
    stop.install()  # a collective on NCCL (a gloo group); here gloo is the default group
    seconds.append(timed(stop.agreed, 20, repeats, torch.device('cpu')))
    stop.uninstall()
    dist.destroy_process_group()


if __name__ == '__main__':
    main()
