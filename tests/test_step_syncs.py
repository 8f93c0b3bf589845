"""A training step the GPU never waits on: the teacher's EMA in fused kernels with its momentum on the host (the
same weights as mmpretrain's CosineEMA), no device-to-host sync in the forward passes and losses of any shipped
pretraining model, and a whole step whose syncs do not grow with the model."""

import glob
import json
import os.path as osp

import pytest
import torch
from mmengine.config import Config
from mmengine.optim import build_optim_wrapper
from mmpretrain.models.utils import CosineEMA
from mmpretrain.registry import MODELS
from torch import nn

from mmmst.models.algorithms import TeacherEMA
from mmmst.runtime.op_counter import OpCounter, count_train_step
from tests.helpers import DEMO_CFG, ROOT, SMALL_CFG


def student():
    return nn.Sequential(nn.Linear(8, 16), nn.BatchNorm1d(16), nn.Linear(16, 4))


def test_teacher_ema_gives_cosine_emas_weights_to_fp32_rounding_and_resumes(max_iters):
    """30 updates of both EMAs from one student that moves between them, a checkpoint of TeacherEMA after 12 loaded
    into a fresh one: every weight and the step counter as mmpretrain's CosineEMA (paper eq. 1, DINO's cosine
    momentum), and the cosine really used (the teacher is neither the student nor the start)."""
    max_iters(30)
    net = student()
    ours, theirs = TeacherEMA(net, momentum=0.1), CosineEMA(net, momentum=0.1)
    resumed = None
    for step in range(30):
        with torch.no_grad():
            for p in net.parameters():
                p.add_(torch.randn_like(p))
            net[1].running_mean.add_(1.0)
        for ema in (ours, theirs) + ((resumed,) if resumed else ()):
            ema.update_parameters(net)
        if step == 11:
            resumed = TeacherEMA(student(), momentum=0.1)
            resumed.load_state_dict(ours.state_dict())
    for ema in (ours, resumed):
        assert int(ema.steps) == int(theirs.steps) == 30
        for (name, a), b in zip(ema.module.state_dict().items(), theirs.module.state_dict().values()):
            torch.testing.assert_close(a, b, rtol=1e-6, atol=1e-6, msg=name)
    teacher, now = ours.module[0].weight, net[0].weight
    assert not torch.allclose(teacher, now, atol=1e-2)


def test_teacher_ema_update_never_reads_the_device(max_iters):
    max_iters(10)
    net = student()
    ema = TeacherEMA(net, momentum=0.1)
    ema.update_parameters(net)  # the first update reads the step counter once
    with OpCounter() as ops:
        for _ in range(3):
            ema.update_parameters(net)
    assert ops.sync_count() == 0, ops.syncs
    assert ops.ops['step'] == 3 * 3  # per update: one lerp of the parameters, one copy of the buffers, the counter


def pretraining_models():
    """One config per distinct pretraining model shipped in configs/mst (ablations included): backbone, mask
    generator type, decoder or none."""
    seen = {}
    for path in sorted(glob.glob(osp.join(ROOT, 'configs/mst/**/*.py'), recursive=True)):
        cfg = Config.fromfile(path)
        if cfg.model.get('type') != 'MST' or 'train_dataloader' not in cfg:
            continue
        model = cfg.model.to_dict()
        mask = (model.get('mask_generator') or {}).get('type')
        key = json.dumps([model['backbone'], mask, model.get('decoder') is not None], sort_keys=True, default=str)
        seen.setdefault(key, path)
    return sorted(seen.values())


def counted_step(config, batch=2, num_local=2, **model_overrides):
    """Ops of one train_step of a config's model on generated uint8 views of its sizes (AdamW, as configured)."""
    cfg = Config.fromfile(config)
    views = next(t for t in cfg.train_dataloader.dataset.pipeline if t['type'] == 'MultiCropViews')
    channels = cfg.model.backbone.get('in_channels', 3)

    def view(size):
        return torch.randint(0, 256, (batch, channels, size, size), dtype=torch.uint8)

    inputs = [view(views['global_crop_size']) for _ in range(2)]
    inputs += [view(views['local_crop_size']) for _ in range(num_local)]
    model_cfg = cfg.model.copy()
    model_cfg.update(model_overrides)
    model_cfg.setdefault('data_preprocessor', cfg.get('data_preprocessor'))  # as the Runner builds it
    model = MODELS.build(model_cfg).train()
    optim = build_optim_wrapper(model, dict(optimizer=dict(type='AdamW', lr=1e-4), clip_grad=dict(max_norm=3.0)))
    return count_train_step(model, optim, dict(inputs=inputs, data_samples=None))


@pytest.mark.parametrize('config', pretraining_models(), ids=lambda p: osp.basename(p)[:-3])
def test_forward_and_loss_of_every_pretraining_model_never_wait_on_the_device(config, max_iters):
    max_iters(1000)
    ops = counted_step(config)
    assert ops.ops['forward + loss'] > 100  # the counter saw the forward
    assert ops.sync_count('forward + loss') == 0, dict(ops.syncs)


def test_the_steps_syncs_are_a_few_that_do_not_grow_with_the_model(max_iters):
    """The 2-layer demo and the 4-layer recipe: the same syncs, from the same lines (the NaN guard's one decision
    before the optimizer step, the clipped gradient norm that mmengine logs), not one per parameter."""
    max_iters(1000)
    small, large = counted_step(DEMO_CFG), counted_step(SMALL_CFG)
    assert small.syncs == large.syncs
    assert 0 < small.sync_count() <= 3, dict(small.syncs)


def test_the_gpu_report_runs_on_the_cpu_in_quick_mode(tmp_path):
    """tools/analysis_tools/gpu_report.py --device cpu --quick: every figure of the GPU report, for ViT and Swin,
    with compile (dynamo's eager backend), the JPEG folder read by the dataloader, one JSON and one table."""
    from tests.helpers import PY, run

    out = tmp_path / 'report.json'
    result = run([PY, 'tools/analysis_tools/gpu_report.py', '--device', 'cpu', '--quick', '--out', str(out)])
    assert result.returncode == 0, result.stderr[-3000:]
    report = json.loads(out.read_text())
    for arch in ('ViT-S/16', 'Swin-T'):
        figures = report[arch]
        for key in ('DINO mode: s/step', 'full MST, compile: s/step', 'images/s, JPEG folder, 0 workers'):
            assert figures[key] > 0, (arch, key)
        assert 0 < figures['photometric stage share of the MST step'] < 1
        assert figures['syncs in forward + loss (counted)'] == 0
        assert figures['syncs/step (CUDA sync debug mode)'] is None  # no GPU: not measured, not guessed
    assert f'written: {out}' in result.stdout and 'full MST / DINO mode, compile' in result.stdout


def explained_graphs(backbone: str) -> dict:
    """``{piece: (graphs, graph breaks, reasons)}`` of ``torch._dynamo.explain`` for the teacher with its CLS row, the
    mask generator, the masked student and the decoder loss of a small model (run in a process of its own)."""
    from mmengine.logging import MessageHub
    from mmengine.registry import init_default_scope

    import mmmst  # noqa: F401

    init_default_scope('mmpretrain')
    MessageHub.get_current_instance().update_info('max_iters', 100)
    cfg = Config.fromfile(DEMO_CFG)
    model_cfg = cfg.model.copy()
    size = 28
    if backbone == 'Swin':  # a small Swin of the Swin-T code path: 4 stages, window 7, a 7 x 7 last map
        swin = Config.fromfile(osp.join(ROOT, 'configs/mst/mst_swin-tiny_8xb128-amp-coslr-100e_in1k.py')).model
        model_cfg = swin.copy()
        model_cfg.backbone.arch = dict(embed_dims=16, depths=[1, 1, 1, 1], num_heads=[1, 1, 1, 1])
        model_cfg.neck.update(in_channels=128, hidden_channels=32, bottleneck_channels=16, out_channels=64)
        model_cfg.head.out_channels = 64
        model_cfg.decoder.in_channels = 128
        size = 224
    model = MODELS.build(model_cfg).train()
    channels = model_cfg.backbone.get('in_channels', 3)
    views = torch.randn(4, channels, size, size)
    teacher, student = model.teacher.module.backbone, model.backbone

    def teacher_forward(x):
        out = teacher.encode(x, return_cls_attention=True)
        return out.cls_token, out.cls_attention

    def student_forward(x, mask):
        out = student.encode(x, mask=mask)
        return out.cls_token, out.patch_map

    attention = teacher_forward(views)[1]
    mask = model.mask_generator(attention)
    patch_map = student_forward(views, mask)[1]
    found = {}
    for name, fn, args in (
        ('teacher', teacher_forward, (views,)),
        ('mask generator', model.mask_generator, (attention,)),
        ('student', student_forward, (views, mask)),
        ('decoder loss', model.decoder.loss, (patch_map, views)),
    ):
        torch._dynamo.reset()
        explained = torch._dynamo.explain(fn)(*args)
        found[name] = (explained.graph_count, explained.graph_break_count, str(explained.break_reasons)[:500])
    return found


@pytest.mark.parametrize('backbone', ['demo ViT', 'Swin'])
def test_the_networks_forward_passes_compile_without_graph_breaks(backbone):
    """torch._dynamo.explain of what compile=True captures and of the pieces between: one graph each, no break.
    In a process of its own: dynamo's threads in a test process would be inherited half-way by a later test that
    forks (torch.multiprocessing with fork), which then hangs."""
    from tests.helpers import PY, run

    code = (  # this repository's tests/ as the package `tests` (mmseg's wheel installs another one)
        f'import json, sys, types; sys.modules["tests"] = package = types.ModuleType("tests"); '
        f'package.__path__ = [{osp.join(ROOT, "tests")!r}]; '
        f'from tests.test_step_syncs import explained_graphs; print(json.dumps(explained_graphs({backbone!r})))'
    )
    result = run([PY, '-c', code])
    assert result.returncode == 0, result.stderr[-3000:]
    for name, (graphs, breaks, reasons) in json.loads(result.stdout.strip().splitlines()[-1]).items():
        assert graphs == 1 and breaks == 0, (name, reasons)
