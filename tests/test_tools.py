"""tools/: train.py and dist_train.sh (2 CPU processes, gloo), the converter, the shortened demo, bad input."""

import json
import os
import os.path as osp
import re

import numpy as np
import pytest
import torch

from tests.helpers import (
    DEMO_CFG,
    PY,
    ROOT,
    SMALL_CFG,
    copy_run,
    reference_knn_of_model,
    run,
    run_main,
    small_train_options,
)


def test_dist_train_two_cpu_processes(fashion_mnist, free_port, tmp_path):
    """2 gloo processes x batch 2 over 8 images: 2 iterations each."""
    result = run(
        ['bash', 'tools/dist_train.sh', SMALL_CFG, '2'] + small_train_options(fashion_mnist, tmp_path),
        input='',
        extra_env=dict(PORT=free_port()),
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    log = open(next(osp.join(dp, f) for dp, _, fs in os.walk(tmp_path) for f in fs if f.endswith('.log'))).read()
    assert 'Distributed training: True' in log
    assert 'Epoch(train) [1][2/2]' in log  # 8 images / (2 processes x batch 2)
    assert osp.isfile(tmp_path / 'epoch_1.pth')


def test_train_then_resume(fashion_mnist, one_epoch_run, tmp_path):
    copy_run(one_epoch_run, tmp_path)
    options = small_train_options(fashion_mnist, tmp_path)
    options[options.index('train_cfg.max_epochs=1')] = 'train_cfg.max_epochs=2'
    second = run([PY, 'tools/train.py', SMALL_CFG, '--resume'] + options)
    assert second.returncode == 0, second.stderr[-3000:]
    assert osp.isfile(tmp_path / 'epoch_2.pth')
    assert 'resumed epoch: 1' in (second.stdout + second.stderr)

    # the k-NN entry point on that checkpoint: the teacher features of the toy set, 20-NN, with a progress bar
    out = tmp_path / 'knn.json'
    knn = run(
        [
            PY,
            'tools/analysis_tools/knn_eval.py',
            SMALL_CFG,
            str(tmp_path / 'epoch_2.pth'),
            '--out',
            str(out),
            '--cfg-options',
            f'knn_bank_dataloader.dataset.data_root={fashion_mnist}',
            f'knn_query_dataloader.dataset.data_root={fashion_mnist}',
        ]
    )
    assert knn.returncode == 0, knn.stderr[-3000:]
    assert 'k-NN top-1 (cls, k=20, T=0.07)' in knn.stdout and 'task/s' in knn.stdout
    assert json.load(open(out))['knn_top1'] == round(reference_knn_of(tmp_path / 'epoch_2.pth', fashion_mnist), 2)


def reference_knn_of(checkpoint, data_root, feature='cls', seed=0):
    """The independent k-NN figure (``helpers.reference_knn_of_model``) of a checkpoint, or of the network as
    ``--random-init --seed`` builds it (``checkpoint`` None), on the config's k-NN loaders under ``data_root``."""
    from mmengine.config import Config

    from mmmst.apis import init_model

    cfg = Config.fromfile(SMALL_CFG)
    for loader in ('knn_bank_dataloader', 'knn_query_dataloader'):
        cfg[loader].dataset.data_root = data_root
    model = init_model(cfg, None if checkpoint is None else str(checkpoint), seed)
    return reference_knn_of_model(cfg, model, feature)


def test_knn_eval_random_init_and_patch_mean(fashion_mnist, tmp_path):
    data = [
        '--cfg-options',
        f'knn_bank_dataloader.dataset.data_root={fashion_mnist}',
        f'knn_query_dataloader.dataset.data_root={fashion_mnist}',
    ]
    tool = 'tools/analysis_tools/knn_eval.py'
    figures = {}
    for feature in ('cls', 'patch-mean'):
        out = tmp_path / f'{feature}.json'
        result = run([PY, tool, SMALL_CFG, '--random-init', '--feature', feature, '--out', str(out), *data])
        assert result.returncode == 0, result.stderr[-3000:]
        assert f'k-NN top-1 ({feature}, k=20' in result.stdout
        figures[feature] = json.load(open(out))['knn_top1']
    # the same seeded network, two different features of it, each as the independent reference computes it (in
    # this process: --random-init draws the same network in every process)
    for feature in ('cls', 'patch-mean'):
        assert figures[feature] == round(reference_knn_of(None, fashion_mnist, feature), 2), feature
    both = run_main(tool, SMALL_CFG, tmp_path / 'cls.json', '--random-init')
    assert both.returncode != 0 and 'give a checkpoint or --random-init, not both' in both.stderr


@pytest.mark.parametrize(
    'option,message',
    [
        ('train_dataloader.dataset.data_root=/nonexistent/fmnist', "data_root '/nonexistent/fmnist' does not exist"),
        ('model.mask_generator.prob=abc', "prob must be a number or a (lo, hi) pair, got 'abc'"),
        ('model.mask_generator.prob=1.5', 'prob must be in [0, 1], got 1.5'),
        ('model.mask_generator.num=0', 'num must be an int >= 1, got 0'),
        ('model.teacher_momentum=2', 'teacher_momentum must be in [0, 1], got 2'),
        ('model.neck.in_channels=64', 'neck.in_channels=64 does not match the backbone width 128'),
    ],
)
def test_train_bad_input_gives_one_clear_message(fashion_mnist, tmp_path, option, message):  # noqa: F811
    data = [] if 'data_root' in option else [f'train_dataloader.dataset.data_root={fashion_mnist}']
    result = run_main('tools/train.py', SMALL_CFG, '--work-dir', tmp_path, '--cfg-options', option, *data)
    assert result.returncode != 0
    last = result.stderr.strip().splitlines()[-1]
    assert last.startswith('error: ') and message in last, last
    assert 'Traceback' not in result.stderr
    assert 'Config:' not in result.stdout + result.stderr  # refused before the Runner prints anything


def test_train_empty_data_root(tmp_path):
    empty = tmp_path / 'empty'
    empty.mkdir()
    result = run_main('tools/train.py', SMALL_CFG, '--cfg-options', f'train_dataloader.dataset.data_root={empty}')
    assert result.returncode != 0 and f"data_root '{empty}' is empty" in result.stderr


def tiny_mst():
    from mmpretrain.registry import MODELS

    model = MODELS.build(
        dict(
            type='MST',
            backbone=dict(
                type='MSTViT',
                arch=dict(embed_dims=32, num_layers=2, num_heads=4, feedforward_channels=64),
                img_size=32,
                patch_size=8,
            ),
            neck=dict(type='DINONeck', in_channels=32, out_channels=16, hidden_channels=16, bottleneck_channels=8),
            head=dict(type='DINOHead', out_channels=16),
        )
    )
    model.init_weights()
    with torch.no_grad():  # make teacher and student differ, as after training
        for p in model.teacher.parameters():
            p.add_(0.5)
    return model


def test_converter_output_loads_into_plain_mmpretrain_vit(tmp_path):
    from mmpretrain.models.backbones import VisionTransformer

    model = tiny_mst()
    src, dst = tmp_path / 'mst.pth', tmp_path / 'backbone.pth'
    torch.save(dict(state_dict=model.state_dict(), meta=dict(epoch=1)), src)
    result = run([PY, 'tools/model_converters/mst_to_backbone.py', str(src), str(dst)])
    assert result.returncode == 0, result.stderr
    vit = VisionTransformer(
        arch=dict(embed_dims=32, num_layers=2, num_heads=4, feedforward_channels=64),
        img_size=32,
        patch_size=8,
        init_cfg=dict(type='Pretrained', checkpoint=str(dst), prefix='backbone.'),
    )
    vit.init_weights()
    state = torch.load(dst, weights_only=True)['state_dict']
    missing, unexpected = vit.load_state_dict({k[len('backbone.') :]: v for k, v in state.items()}, strict=False)
    assert missing == [] and unexpected == []
    for name, tensor in vit.state_dict().items():
        torch.testing.assert_close(tensor, model.teacher.module.backbone.state_dict()[name])


def test_converter_refuses_checkpoint_without_mst_keys(tmp_path):
    src = tmp_path / 'classifier.pth'
    torch.save(dict(state_dict={'backbone.cls_token': torch.zeros(1)}), src)
    result = run([PY, 'tools/model_converters/mst_to_backbone.py', str(src), str(tmp_path / 'out.pth')])
    assert result.returncode != 0
    assert 'no "teacher.module.backbone.*" keys' in result.stderr and 'Traceback' not in result.stderr


def test_shortened_demo_writes_metrics_and_report(fashion_mnist, tmp_path):
    result = run(
        [
            PY,
            'tools/demo.py',
            '--data-root',
            fashion_mnist,
            '--work-dir',
            str(tmp_path),
            '--max-epochs',
            '1',
            '--train-size',
            '64',
            '--bank-size',
            '64',
            '--query-size',
            '32',
        ]
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    metrics = json.load(open(tmp_path / 'metrics.json'))
    # each figure as the independent reference computes it, on the demo's subsets (64 bank, 32 query images)
    from mmmst.apis import budgeted_cfg, init_model

    cfg = budgeted_cfg(DEMO_CFG, str(tmp_path), fashion_mnist, 64, 64, 32, 1)
    trained = init_model(cfg, str(tmp_path / 'epoch_1.pth'))
    assert metrics['knn_top1_mst'] == round(reference_knn_of_model(cfg, trained), 2)
    untrained = init_model(cfg, seed=cfg.randomness.seed or 0)
    assert metrics['knn_top1_random_init'] == round(reference_knn_of_model(cfg, untrained), 2)
    # the stripes make raw pixels a perfect k-NN feature on this toy set
    assert metrics['knn_top1_raw_pixels'] == 100.0
    assert metrics['iterations'] == 1  # 64 images / batch 64
    # what the user sees: one line per epoch with the time left, the k-NN steps and the table, not the Runner's log
    assert re.search(
        r'^\[demo\] epoch 1/1 done: loss \d+\.\d+, \d+ s per epoch, training ETA 0\.0 min', result.stdout, re.M
    )
    assert 'mmengine - INFO' not in result.stdout + result.stderr and 'Epoch(train)' not in result.stdout
    assert '[demo] k-NN of the untrained network: 64 bank and 32 query images' in result.stdout
    log = next(osp.join(d, f) for d, _, fs in os.walk(tmp_path) for f in fs if f.endswith('.log'))
    assert 'Epoch(train) [1][1/1]' in open(log).read()  # the full log still has the iterations
    report = open(tmp_path / 'report.md').read()
    assert f'| raw pixels | {metrics["knn_top1_raw_pixels"]:.2f} |' in report
    assert osp.isfile(tmp_path / 'epoch_1.pth')
    # the collapse monitors reach mmengine's scalar log like the losses
    scalars_json = next(osp.join(d, f) for d, _, fs in os.walk(tmp_path) for f in fs if f == 'scalars.json')
    logged = json.loads(open(scalars_json).readline())
    for key in ('teacher_entropy', 'kl_teacher_student', 'teacher_feature_std', 'mask_ratio', 'center_norm'):
        assert np.isfinite(logged[key]), key


def test_visualize_attention_from_checkpoint_and_random_init(fashion_mnist, tmp_path):
    from mmengine.config import Config

    tool = 'tools/analysis_tools/visualize_attention.py'
    data = ['--cfg-options', f'knn_query_dataloader.dataset.data_root={fashion_mnist}']
    init = run([PY, tool, SMALL_CFG, '--random-init', '--num', '4', '--out', str(tmp_path / 'init.png'), *data])
    assert init.returncode == 0, init.stderr[-3000:]

    from mmpretrain.registry import MODELS

    # an MST checkpoint of the demo network (untrained: the picture needs no training)
    torch.manual_seed(0)
    model = MODELS.build(Config.fromfile(SMALL_CFG).model)
    torch.save(dict(state_dict=model.state_dict()), tmp_path / 'mst.pth')
    trained = run([PY, tool, SMALL_CFG, str(tmp_path / 'mst.pth'), '--out', str(tmp_path / 'mst.png'), *data])
    assert trained.returncode == 0, trained.stderr[-3000:]
    torch.manual_seed(1)  # other weights, the same picture's layout
    torch.save(dict(state_dict=MODELS.build(Config.fromfile(SMALL_CFG).model).state_dict()), tmp_path / 'other.pth')
    other = run([PY, tool, SMALL_CFG, str(tmp_path / 'other.pth'), '--out', str(tmp_path / 'other.png'), *data])
    assert other.returncode == 0, other.stderr[-3000:]
    import mmcv

    pictures = {name: mmcv.imread(str(tmp_path / f'{name}.png')) for name in ('init', 'mst', 'other')}
    assert all(p is not None and p.std() > 10 for p in pictures.values())  # decodable and drawn, not blank
    assert pictures['mst'].shape == pictures['other'].shape
    assert not np.array_equal(pictures['mst'], pictures['other'])  # each checkpoint's own attention is drawn

    missing = run_main(tool, SMALL_CFG, tmp_path / 'nope.pth', '--out', tmp_path / 'x.png')
    assert missing.returncode != 0 and 'nope.pth' in missing.stderr and 'does not exist' in missing.stderr
    no_data = run_main(
        tool,
        SMALL_CFG,
        '--random-init',
        '--out',
        tmp_path / 'x.png',
        '--cfg-options',
        f'knn_query_dataloader.dataset.data_root={tmp_path / "none"}',
    )
    assert no_data.returncode != 0 and 'does not exist' in no_data.stderr and 'Traceback' not in no_data.stderr


def test_resume_without_a_checkpoint_refuses_instead_of_starting_over(fashion_mnist, tmp_path):
    result = run_main('tools/train.py', SMALL_CFG, '--resume', *small_train_options(fashion_mnist, tmp_path))
    assert result.returncode != 0
    assert result.stderr.strip().splitlines()[-1] == (
        f'error: --resume: no checkpoint to resume in {tmp_path} (no last_checkpoint file); '
        'give a checkpoint (--resume <file>) or start without --resume'
    )
    assert not any(name.endswith('.pth') for name in os.listdir(tmp_path))
    missing = run_main(
        'tools/train.py', SMALL_CFG, '--resume', tmp_path / 'nope.pth', *small_train_options(fashion_mnist, tmp_path)
    )
    assert (
        missing.stderr.strip().splitlines()[-1]
        == f"error: --resume: checkpoint '{tmp_path / 'nope.pth'}' does not exist"
    )


def test_resume_from_a_half_written_checkpoint_names_the_file(fashion_mnist, one_epoch_run, tmp_path):
    copy_run(one_epoch_run, tmp_path)
    data = (tmp_path / 'epoch_1.pth').read_bytes()
    (tmp_path / 'epoch_1.pth').write_bytes(data[: len(data) // 2])  # a save killed halfway
    second = run_main('tools/train.py', SMALL_CFG, '--resume', *small_train_options(fashion_mnist, tmp_path))
    assert second.returncode != 0
    last = second.stderr.strip().splitlines()[-1]
    assert last.startswith(f'error: {tmp_path / "epoch_1.pth"}: not a readable PyTorch checkpoint'), last


def test_cfg_options_set_any_key_and_warn_on_a_likely_typo(fashion_mnist, tmp_path):
    """mmengine's rule (any key) with a warning where a new key is one edit away from an existing one."""
    from mmengine.config import Config

    from mmmst.cli import cfg_option_warnings

    cfg = Config.fromfile(SMALL_CFG)
    assert cfg_option_warnings(cfg, {'model.backbone.drop_path_rat': 0.1}) == [
        "--cfg-options 'model.backbone.drop_path_rat' adds a new key; did you mean 'model.backbone.drop_path_rate'?"
    ]
    new_keys = {'randomness.deterministic': True, 'model_wrapper_cfg.find_unused_parameters': True}
    assert cfg_option_warnings(cfg, new_keys) == []
    result = run(
        [PY, 'tools/train.py', SMALL_CFG]
        + small_train_options(fashion_mnist, tmp_path)
        + ['randomness.deterministic=True', 'model.decoder.norm_cfg.type=SyncBN']
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert 'warning: --cfg-options' not in result.stderr


KILLER = '''
"""Kills its own process with SIGKILL halfway through writing a checkpoint (when KILL_AT_SAVE is set)."""
import os
import signal

from mmengine.hooks import Hook
from mmengine.registry import HOOKS


@HOOKS.register_module()
class KillDuringSave(Hook):
    def before_save_checkpoint(self, runner, checkpoint):
        if os.environ.get('KILL_AT_SAVE') == str(runner.epoch + 1):
            partial = runner.message_hub.get_info('last_ckpt') + '.partial'
            with open(partial, 'wb') as f:
                f.write(b'PK\\x03\\x04' + os.urandom(1000))  # the first bytes of a zip, then the kill
            os.kill(os.getpid(), signal.SIGKILL)
'''


def killable_config(tmp_path, max_keep_ckpts=3):
    """The 4-layer config with the kill-during-save hook; returns (config path, env with the hook on PYTHONPATH)."""
    helpers = tmp_path / 'helpers'
    helpers.mkdir()
    (helpers / 'kill_during_save.py').write_text(KILLER)
    config = tmp_path / 'killed.py'
    config.write_text(
        f'_base_ = {SMALL_CFG!r}\n'
        "custom_imports = dict(imports=['mmmst', 'kill_during_save'], allow_failed_imports=False)\n"
        "custom_hooks = [dict(type='TeacherTempHook'), dict(type='FreezeLastLayerHook', freeze_epochs=1),\n"
        "                dict(type='KillDuringSave')]\n"
        f'default_hooks = dict(checkpoint=dict(interval=1, max_keep_ckpts={max_keep_ckpts}))\n'
    )
    return config, dict(PYTHONPATH=os.pathsep.join([ROOT, str(helpers)]))


def test_kill_during_a_checkpoint_save_loses_nothing_and_resumes(fashion_mnist, tmp_path):
    """SIGKILL while epoch_2.pth is written, max_keep_ckpts=1: epoch_1.pth survives and --resume continues."""
    config, env = killable_config(tmp_path, max_keep_ckpts=1)
    work = tmp_path / 'work'
    options = small_train_options(fashion_mnist, work)
    options[options.index('train_cfg.max_epochs=1')] = 'train_cfg.max_epochs=2'
    env['KILL_AT_SAVE'] = '2'
    killed = run([PY, 'tools/train.py', str(config)] + options, extra_env=env)
    assert killed.returncode == -9, killed.stderr[-3000:]
    assert sorted(n for n in os.listdir(work) if '.pth' in n) == ['epoch_1.pth', 'epoch_2.pth.partial']
    assert open(work / 'last_checkpoint').read() == str(work / 'epoch_1.pth')
    assert 'state_dict' in torch.load(work / 'epoch_1.pth', weights_only=False)

    env['KILL_AT_SAVE'] = ''
    resumed = run([PY, 'tools/train.py', str(config), '--resume'] + options, extra_env=env)
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    assert 'resumed epoch: 1' in resumed.stdout + resumed.stderr
    assert sorted(n for n in os.listdir(work) if n.endswith('.pth')) == ['epoch_2.pth']  # max_keep_ckpts=1
    assert open(work / 'last_checkpoint').read() == str(work / 'epoch_2.pth')


def test_resume_with_non_persistent_workers_continues_the_same_run_tensor_for_tensor(fashion_mnist, tmp_path):
    """2 epochs straight == resumed from the straight run's epoch_1.pth in a new process (what a run killed after
    epoch 1 resumes from), with a worker re-created (and re-seeded) each epoch. Persistent workers, no workers,
    2 processes and kills inside an epoch: tests/test_preemption.py."""

    def options(work):
        opts = small_train_options(fashion_mnist, work)
        opts[opts.index('train_cfg.max_epochs=1')] = 'train_cfg.max_epochs=2'
        opts[opts.index('train_dataloader.num_workers=0')] = 'train_dataloader.num_workers=1'
        return opts

    config, env = killable_config(tmp_path)
    straight = run([PY, 'tools/train.py', str(config)] + options(tmp_path / 'straight'), extra_env=env)
    assert straight.returncode == 0, straight.stderr[-3000:]
    resumed = copy_run(tmp_path / 'straight', tmp_path / 'resumed')
    (resumed / 'epoch_2.pth').unlink()
    (resumed / 'last_checkpoint').write_text(str(resumed / 'epoch_1.pth'))
    second = run([PY, 'tools/train.py', str(config), '--resume'] + options(tmp_path / 'resumed'), extra_env=env)
    assert second.returncode == 0, second.stderr[-3000:]
    a = torch.load(tmp_path / 'straight' / 'epoch_2.pth', weights_only=False)['state_dict']
    b = torch.load(tmp_path / 'resumed' / 'epoch_2.pth', weights_only=False)['state_dict']
    assert a.keys() == b.keys()
    for name in a:
        torch.testing.assert_close(a[name], b[name], rtol=0, atol=0, msg=name)


def test_cfg_options_clear_a_value_or_replace_a_whole_dict(fashion_mnist):
    """``key=None`` clears a value (no mask, no decoder: DINO mode); ``<dict>._delete_=True`` replaces a dict
    instead of merging into it (mmengine's rule), so no key of the old mask generator survives."""
    from mmmst.apis import init_model
    from mmmst.cli import cfg_option_warnings, load_checked_config

    root = {'train_dataloader.dataset.data_root': fashion_mnist}
    dino = load_checked_config(SMALL_CFG, dict(root, **{'model.mask_generator': None, 'model.decoder': None}))
    model = init_model(dino)
    assert model.mask_generator is None and model.decoder is None and model.backbone.mask_token is None

    swap = {
        'model.mask_generator._delete_': True,
        'model.mask_generator.type': 'RandomMaskGenerator',
        'model.mask_generator.prob': 0.3,
    }
    cfg = load_checked_config(SMALL_CFG, dict(root, **swap))
    assert cfg.model.mask_generator.to_dict() == dict(type='RandomMaskGenerator', prob=0.3)  # 'num' is gone
    assert type(init_model(cfg).mask_generator).__name__ == 'RandomMaskGenerator'
    from mmengine.config import Config

    assert cfg_option_warnings(Config.fromfile(SMALL_CFG), swap) == []
