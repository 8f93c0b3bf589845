"""The commands a user types, as the README and docs/errors.md give them: the core set-up tier, CPU fallbacks, and
inputs that must be refused in one line before anything is computed or lost."""

import json
import os
import os.path as osp
import shutil
import subprocess

import numpy as np
import pytest
import torch
from PIL import Image

from tests.helpers import DEMO_CFG, PY, ROOT, SMALL_CFG, last_line, run, run_main, small_train_options

DET_CFG = 'configs/mst/benchmarks/mmdetection/mask-rcnn_mst-swin-tiny_fpn_1x_coco.py'
IMAGENET_CFG = 'configs/mst/mst_deit-small-p16_8xb128-amp-coslr-100e_in1k.py'

# A sitecustomize that makes the full tier's packages unimportable, as on the core tier (mmcv-lite has no
# compiled `mmcv._ext`; mmdet and mmseg are not installed there).
CORE_TIER = """
import sys


class _CoreTier:
    blocked = ('mmcv._ext', 'mmdet', 'mmseg')

    def find_spec(self, name, path=None, target=None):
        if any(name == b or name.startswith(b + '.') for b in self.blocked):
            raise ModuleNotFoundError(f'No module named {name!r} (core tier)', name=name)
        return None


sys.meta_path.insert(0, _CoreTier())
"""


@pytest.fixture(scope='module')
def core_tier_env(tmp_path_factory):
    folder = tmp_path_factory.mktemp('core_tier')
    (folder / 'sitecustomize.py').write_text(CORE_TIER)
    return dict(PYTHONPATH=os.pathsep.join([str(folder), ROOT]))


def test_import_mmmst_is_silent_on_the_core_tier(core_tier_env):
    # the check can fail: mmcv's transformer bricks warn on the core tier when imported by themselves
    bare = run([PY, '-c', 'import mmcv.cnn.bricks.transformer'], extra_env=core_tier_env)
    assert bare.returncode == 0 and 'MultiScaleDeformableAttention' in bare.stderr, bare.stderr[-2000:]
    result = run([PY, '-c', 'import mmmst, mmpretrain.models; print("ok")'], extra_env=core_tier_env)
    assert result.returncode == 0, result.stderr[-2000:]
    assert result.stdout.strip() == 'ok' and result.stderr.strip() == ''


@pytest.mark.parametrize('codebase,tool', [('mmdetection', 'dist_train'), ('mmsegmentation', 'dist_test')])
def test_downstream_launcher_on_the_core_tier_names_what_is_missing(core_tier_env, tmp_path, codebase, tool):
    config = next(
        osp.join('configs/mst/benchmarks', codebase, name)
        for name in sorted(os.listdir(osp.join(ROOT, 'configs/mst/benchmarks', codebase)))
    )
    result = run(
        ['bash', f'tools/benchmarks/{codebase}/{tool}.sh', config, str(tmp_path / 'x.pth'), '2'],
        extra_env=core_tier_env,
    )
    assert result.returncode != 0
    name = 'mmdet' if codebase == 'mmdetection' else 'mmseg'
    assert result.stderr.strip() == (
        f'error: {name} {tool[5:]} needs mmcv with its compiled ops (mmcv-lite has none) and {name}, which this '
        'environment lacks (the core tier of `make demo`); install the full tier with `make setup` '
        '(bash tools/setup_env.sh full)'
    )


def test_downstream_launcher_without_its_data_says_so_in_one_line(mst_checkpoints, tmp_path, free_port):
    missing = tmp_path / 'no_coco'
    result = run(
        [
            'bash',
            'tools/benchmarks/mmdetection/dist_train.sh',
            DET_CFG,
            mst_checkpoints['swin'][0],
            '2',
            '--cfg-options',
            f'train_dataloader.dataset.data_root={missing}',
        ],
        extra_env=dict(PORT=free_port()),
    )
    assert result.returncode != 0
    assert result.stderr.strip() == (
        f"error: train_dataloader: data_root '{missing}' does not exist. Put the data there or pass "
        '--cfg-options train_dataloader.dataset.data_root=<path>'
    )


def test_downstream_launcher_names_a_custom_import_that_is_not_installed(tmp_path):
    config = 'configs/mst/benchmarks/mmsegmentation/upernet_mst-swin-tiny_8xb2-80k_cityscapes-512x1024.py'
    result = run(
        ['bash', 'tools/benchmarks/mmsegmentation/dist_test.sh', config, str(tmp_path / 'x.pth'), '2',
         '--cfg-options', 'custom_imports.imports=[mmmst,my_plugins.hooks]'],
    )  # fmt: skip
    assert result.returncode != 0
    assert result.stderr.strip() == f"error: custom_imports: no module named 'my_plugins' (config {config})"


@pytest.mark.slow
def test_readme_pretraining_command_runs_on_two_cpu_processes(imagenet_tree, tmp_path, free_port):
    """The README's `dist_train.sh <-amp- config> N` without a GPU: full precision, one warning line."""
    result = run(
        [
            'bash',
            'tools/dist_train.sh',
            IMAGENET_CFG,
            '2',
            '--work-dir',
            str(tmp_path),
            '--cfg-options',
            f'train_dataloader.dataset.data_root={imagenet_tree}',
            'train_dataloader.batch_size=1',
            'train_dataloader.num_workers=0',
            'train_dataloader.persistent_workers=False',
            'train_cfg.max_epochs=1',
            'train_dataloader.dataset.pipeline.1.global_crop_size=32',
            'train_dataloader.dataset.pipeline.1.local_crop_size=16',
            'train_dataloader.dataset.pipeline.1.num_local_views=2',
        ],
        extra_env=dict(PORT=free_port()),
    )
    assert result.returncode == 0, result.stderr[-3000:]
    warnings = [line for line in result.stderr.splitlines() if 'mixed precision' in line]
    assert warnings == [
        'warning: no GPU visible: mixed precision (AmpOptimWrapper) needs one; training in full precision'
    ]
    log = open(next(osp.join(d, f) for d, _, fs in os.walk(tmp_path) for f in fs if f.endswith('.log'))).read()
    assert 'Epoch(train) [1][2/2]' in log and osp.isfile(tmp_path / 'epoch_1.pth')


@pytest.fixture
def small_checkpoint(one_epoch_run):
    """A 1-epoch checkpoint of the 4-layer Fashion-MNIST config (its work dir, the session's shared run)."""
    return one_epoch_run


def knn_data(fashion_mnist):
    return [
        '--cfg-options',
        f'knn_bank_dataloader.dataset.data_root={fashion_mnist}',
        f'knn_query_dataloader.dataset.data_root={fashion_mnist}',
    ]


def test_knn_eval_with_another_config_says_which_disagree_in_one_line(fashion_mnist, small_checkpoint):
    checkpoint = str(small_checkpoint / 'epoch_1.pth')
    result = run([PY, 'tools/analysis_tools/knn_eval.py', DEMO_CFG, checkpoint, *knn_data(fashion_mnist)])
    assert result.returncode != 0
    line = last_line(result)
    assert line.startswith(f'error: {checkpoint} does not fit the model of {DEMO_CFG}: ') and 'missing' not in line
    assert '48 keys unexpected (backbone.layers.2.ln1.weight;' in line and 'Give the config the checkpoint was' in line
    assert len(result.stderr) < 2000 and 'Traceback' not in result.stderr


def test_knn_eval_random_init_prints_no_initialisation_log(fashion_mnist):
    result = run([PY, 'tools/analysis_tools/knn_eval.py', SMALL_CFG, '--random-init', *knn_data(fashion_mnist)])
    assert result.returncode == 0, result.stderr[-3000:]
    output = result.stdout + result.stderr
    assert 'k-NN top-1 (cls, k=20, T=0.07)' in output
    assert 'init' not in output.lower(), output[:3000]


@pytest.mark.parametrize(
    'option,message',
    [
        (['--temperature', '0'], '--temperature must be > 0, got 0.0'),
        (['--temperature', '-1'], '--temperature must be > 0, got -1.0'),
        (['--k', '0'], '--k must be >= 1, got 0'),
        (['--num-classes', '2'], '--num-classes 2 is below the 10 classes of the bank dataset'),
    ],
)
def test_knn_eval_refuses_bad_arguments_before_any_feature(fashion_mnist, option, message):
    result = run_main('tools/analysis_tools/knn_eval.py', SMALL_CFG, '--random-init', *option, *knn_data(fashion_mnist))
    assert result.returncode != 0 and message in last_line(result), result.stderr[-2000:]
    assert 'task/s' not in result.stdout  # no progress bar: nothing was extracted


def test_knn_eval_reports_the_k_it_used(fashion_mnist, tmp_path):
    out = tmp_path / 'knn.json'
    result = run(
        [
            PY,
            'tools/analysis_tools/knn_eval.py',
            SMALL_CFG,
            '--random-init',
            '--k',
            '1000',
            '--out',
            str(out),
            *knn_data(fashion_mnist),
        ]
    )
    assert result.returncode == 0, result.stderr[-2000:]
    assert 'warning: --k 1000 is more than the 64 bank images; using k=64' in result.stderr
    assert 'k-NN top-1 (cls, k=64, T=0.07)' in result.stdout
    # the clamp itself: the printed top-1 is DINO's weighted vote over all 64 bank images, computed by hand
    from mmengine.config import Config

    from mmmst.apis import init_model
    from tests.helpers import reference_knn_of_loaders

    cfg = Config.fromfile(SMALL_CFG)
    cfg.merge_from_dict(dict(arg.split('=', 1) for arg in knn_data(fashion_mnist)[1:]))
    model = init_model(cfg, None, 0)
    expected = reference_knn_of_loaders(cfg.knn_bank_dataloader, cfg.knn_query_dataloader, model, k=64)
    assert json.load(open(out))['knn_top1'] == pytest.approx(expected, abs=0.01)


def test_visualize_attention_takes_a_pretraining_config(imagenet_tree, tmp_path):
    out = tmp_path / 'attention.png'
    result = run(
        [
            PY,
            'tools/analysis_tools/visualize_attention.py',
            IMAGENET_CFG,
            '--random-init',
            '--num',
            '4',
            '--out',
            str(out),
            '--cfg-options',
            f'train_dataloader.dataset.data_root={imagenet_tree}',
        ]
    )
    assert result.returncode == 0, result.stderr[-3000:]
    image = np.asarray(Image.open(out))
    assert image.shape[1] > image.shape[0] > 100 and image.std() > 10  # a drawn grid, not a blank file


def test_converter_refuses_to_overwrite_its_input(small_checkpoint, tmp_path):
    source = tmp_path / 'mst.pth'
    shutil.copy(small_checkpoint / 'epoch_1.pth', source)
    before = source.read_bytes()
    os.symlink(source, tmp_path / 'link.pth')
    for destination in (source, tmp_path / 'link.pth', tmp_path / '.' / 'mst.pth'):
        result = run_main('tools/model_converters/mst_to_backbone.py', source, destination)
        assert result.returncode != 0
        assert (
            last_line(result)
            == f'error: the output {str(destination)!r} is the input checkpoint; give another file name'
        )
    assert source.read_bytes() == before
    ok = run_main('tools/model_converters/mst_to_backbone.py', source, tmp_path / 'backbone.pth')
    assert ok.returncode == 0 and not osp.exists(tmp_path / 'backbone.pth.partial')
    assert all(k.startswith('backbone.') for k in torch.load(tmp_path / 'backbone.pth')['state_dict'])


def test_resume_with_another_width_is_refused_naming_keys_and_settings(fashion_mnist, small_checkpoint, tmp_path):
    work = tmp_path / 'work'
    shutil.copytree(small_checkpoint, work)
    options = small_train_options(fashion_mnist, work, epochs=2) + [
        'model.neck.out_channels=32',
        'model.head.out_channels=32',
    ]
    refused = run_main('tools/train.py', SMALL_CFG, '--resume', work / 'epoch_1.pth', *options)
    assert refused.returncode != 0
    line = last_line(refused)
    assert line.startswith(f"error: --resume: {work / 'epoch_1.pth'} does not fit this config's model: "), line
    assert (
        '5 keys of another shape (neck.last_layer.parametrizations.weight.original0 (64, 1) in the checkpoint, '
        '(32, 1) in the model;' in line
    )
    assert 'model.head.out_channels: 64 -> 32' in line and '--non-strict' in line
    assert not osp.exists(work / 'epoch_2.pth')
    # the explicit opt-out loads what fits
    forced = run([PY, 'tools/train.py', SMALL_CFG, '--resume', str(work / 'epoch_1.pth'), '--non-strict'] + options)
    assert forced.returncode == 0, forced.stderr[-3000:]
    assert osp.isfile(work / 'epoch_2.pth')


def test_a_copied_work_dir_never_resumes_from_the_original(fashion_mnist, small_checkpoint, tmp_path):
    copy = tmp_path / 'copy'
    shutil.copytree(small_checkpoint, copy)  # its last_checkpoint names the original's file (an absolute path)
    options = small_train_options(fashion_mnist, copy, epochs=2)
    outside = run_main('tools/train.py', SMALL_CFG, '--resume', *options)
    assert outside.returncode != 0
    assert last_line(outside) == (
        f'error: --resume: {copy / "last_checkpoint"} names {small_checkpoint / "epoch_1.pth"}, outside this work dir '
        f'(a copied work dir?); give the checkpoint to resume explicitly: --resume {copy / "epoch_1.pth"}'
    )
    # a relative name is read relative to the work dir
    (copy / 'epoch_1.pth').rename(copy / 'renamed.pth')
    (copy / 'last_checkpoint').write_text('renamed.pth')
    resumed = run([PY, 'tools/train.py', SMALL_CFG, '--resume'] + options)
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    assert f'Load checkpoint from {copy / "renamed.pth"}' in resumed.stdout + resumed.stderr
    assert osp.isfile(copy / 'epoch_2.pth') and not osp.exists(small_checkpoint / 'epoch_2.pth')
    # a last_checkpoint naming a deleted file
    (copy / 'last_checkpoint').write_text('deleted.pth')
    deleted = run_main('tools/train.py', SMALL_CFG, '--resume', *small_train_options(fashion_mnist, copy, epochs=3))
    assert last_line(deleted) == (
        f'error: --resume: {copy / "last_checkpoint"} names {copy / "deleted.pth"}, which does not exist; give '
        'another checkpoint with --resume <file>'
    )


@pytest.mark.parametrize(
    'option,message',
    [
        (
            'default_hooks.checkpoint.intervl=1',
            "AtomicCheckpointHook: unknown option 'intervl'; did you mean 'interval'?",
        ),
        (
            'default_hooks.checkpoint.max_keep_ckpt=1',
            "AtomicCheckpointHook: unknown option 'max_keep_ckpt'; did you mean 'max_keep_ckpts'?",
        ),
    ],
)
def test_a_misspelt_checkpoint_option_is_refused_before_training(fashion_mnist, tmp_path, option, message):
    result = run_main('tools/train.py', SMALL_CFG, *small_train_options(fashion_mnist, tmp_path), option)
    assert result.returncode != 0 and last_line(result) == f'error: {message}'
    assert 'Epoch(train)' not in result.stdout + result.stderr


def test_ablation_runner_help_keeps_its_line_continuations():
    result = run([PY, '-m', 'projects.small_scale_lab.mask_ablation', '--help'])
    assert result.returncode == 0
    assert '--knn-interval 1 \\\n        --work-dir work_dirs/mask_ablation_8e' in result.stdout


def test_evaluating_a_probe_config_with_a_pretraining_checkpoint_is_refused(mst_checkpoints, imagenet_tree):
    """mmengine would load the backbone, leave the linear head untrained and print a top-1."""
    checkpoint = mst_checkpoints['vit'][0]
    probe = 'configs/mst/benchmarks/deit-small-p16_linear-8xb128-coslr-100e_in1k.py'
    result = run(
        [
            PY,
            'tools/test.py',
            probe,
            checkpoint,
            '--cfg-options',
            f'test_dataloader.dataset.data_root={imagenet_tree}',
        ]
    )
    assert result.returncode != 0
    line = last_line(result)
    assert line.startswith(f"error: tools/test.py: {checkpoint} does not fit this config's model: "), line
    assert 'missing (head.' in line and 'accuracy' not in result.stdout


def test_load_from_a_checkpoint_of_another_network_is_refused(fashion_mnist, mst_checkpoints, tmp_path):
    checkpoint = mst_checkpoints['vit'][0]  # DeiT-S, not the 4-layer 128-wide ViT of the config
    result = run(
        [PY, 'tools/train.py', SMALL_CFG] + small_train_options(fashion_mnist, tmp_path) + [f'load_from={checkpoint}']
    )
    assert result.returncode != 0
    line = last_line(result)
    assert line.startswith(f"error: load_from: {checkpoint} does not fit this config's model: ") and 'shape' in line
    assert not any(n.endswith('.pth') for n in os.listdir(tmp_path))


def test_a_config_built_on_a_missing_codebase_names_it_and_the_set_up(fashion_mnist, tmp_path):
    """What a downstream config gives `tools/train.py` where mmdet / mmseg are not installed (the core tier)."""
    config = tmp_path / 'needs_missing.py'
    config.write_text(f"_base_ = ['mmpose::_base_/default_runtime.py', {SMALL_CFG!r}]\n")
    result = run([PY, 'tools/train.py', str(config)] + small_train_options(fashion_mnist, tmp_path))
    assert result.returncode != 0
    assert last_line(result) == (
        f'error: {config} builds on mmpose, which is not installed (the core tier of `make demo` has no '
        'mmdet or mmseg); install the full tier with `make setup` (bash tools/setup_env.sh full)'
    )


@pytest.mark.parametrize(
    'option,message',
    [
        ('optim_wrapper.optimizer.lr=-1', 'optim_wrapper.optimizer.lr must be a number >= 0, got -1'),
        ('train_dataloader.batch_size=0', 'train_dataloader.batch_size must be an int >= 1, got 0'),
    ],
)
def test_train_refuses_impossible_values_in_one_line(fashion_mnist, tmp_path, option, message):
    result = run_main('tools/train.py', SMALL_CFG, *small_train_options(fashion_mnist, tmp_path), option)
    assert result.returncode != 0 and last_line(result) == f'error: {message}'


def test_command_line_and_config_file_mistakes_are_one_line(fashion_mnist, tmp_path):
    no_equals = run([PY, 'tools/train.py', SMALL_CFG, '--cfg-options', 'train_cfg.max_epochs'])
    assert no_equals.returncode == 2
    assert last_line(no_equals).endswith(
        'error: --cfg-options takes key=value pairs; \'train_cfg.max_epochs\' has no "="'
    )
    broken = tmp_path / 'broken.py'
    broken.write_text("_base_ = ['x.py'\nmodel = dict(\n")
    syntax = run_main('tools/train.py', broken)
    assert syntax.returncode != 0 and last_line(syntax).startswith(f'error: {broken}, line ')
    assert 'syntax error' in last_line(syntax) and 'Traceback' not in syntax.stderr
    missing = run_main('tools/train.py', tmp_path / 'nope.py')
    assert last_line(missing) == f'error: config file {str(tmp_path / "nope.py")!r} does not exist'
    a_file = tmp_path / 'a_file'
    a_file.write_text('not a folder')
    root_is_file = run_main('tools/train.py', SMALL_CFG, *small_train_options(str(a_file), tmp_path))
    assert last_line(root_is_file) == f"error: train_dataloader: data_root '{a_file}' is a file; it must be a folder"


def imagenet_copy(imagenet_tree, tmp_path):
    root = tmp_path / 'imagenet'
    shutil.copytree(imagenet_tree, root)
    return root


@pytest.mark.parametrize(
    'damage,message',
    [
        (
            lambda root: (root / 'meta' / 'train.txt').write_text('n01440764/img_0.JPEG 0\nn01440764/img_1.JPEG\n'),
            'meta/train.txt, line 2: \'n01440764/img_1.JPEG\' is not "<image path> <integer class index>"',
        ),
        (
            lambda root: (root / 'meta' / 'train.txt').write_text('n01440764/img_0.JPEG zero\n'),
            'meta/train.txt, line 1: \'n01440764/img_0.JPEG zero\' is not "<image path> <integer class index>"',
        ),
        (
            lambda root: (root / 'meta' / 'train.txt').write_text(''),
            'meta/train.txt is empty: it must list "<image path> <integer class index>" lines',
        ),
        (lambda root: shutil.rmtree(root / 'train'), "/train' does not exist: data_root"),
    ],
    ids=['no-label', 'text-label', 'empty-meta', 'no-train-folder'],
)
def test_a_damaged_imagenet_tree_is_named_in_one_line(imagenet_tree, tmp_path, damage, message):
    root = imagenet_copy(imagenet_tree, tmp_path)
    damage(root)
    result = run_main('tools/train.py', IMAGENET_CFG, '--work-dir', tmp_path / 'work', '--cfg-options',
                      f'train_dataloader.dataset.data_root={root}')  # fmt: skip
    assert result.returncode != 0
    line = last_line(result)
    assert line.startswith('error: ') and message in line, line
    assert 'Traceback' not in result.stderr


def test_a_truncated_fashion_mnist_file_is_named(fashion_mnist, tmp_path):
    root = tmp_path / 'fmnist'
    shutil.copytree(fashion_mnist, root)
    images = root / 'train-images-idx3-ubyte'
    images.write_bytes(images.read_bytes()[:1000])
    result = run([PY, 'tools/train.py', SMALL_CFG] + small_train_options(str(root), tmp_path / 'work'))
    assert result.returncode != 0
    assert last_line(result) == (
        f'error: {images} is truncated or damaged: 1000 bytes, its header announces 50192 (shape (64, 28, 28)); '
        'copy it again (tools/dataset_converters/prepare_fashion_mnist.py)'
    )


def mount_tmpfs(folder, options):
    """Mount a tmpfs at ``folder`` (needs root); skips the test where that is not possible."""
    folder.mkdir()
    done = subprocess.run(['mount', '-t', 'tmpfs', '-o', options, 'tmpfs', str(folder)], capture_output=True)
    if done.returncode != 0:
        pytest.skip(f'cannot mount a tmpfs here: {done.stderr.decode().strip()}')
    return folder


def test_a_read_only_work_dir_is_one_line(fashion_mnist, tmp_path):
    read_only = mount_tmpfs(tmp_path / 'read_only', 'ro,size=1m')
    try:
        result = run([PY, 'tools/train.py', SMALL_CFG] + small_train_options(fashion_mnist, read_only / 'work'))
    finally:
        subprocess.run(['umount', str(read_only)], check=True)
    assert result.returncode != 0
    assert last_line(result) == f'error: work dir {read_only / "work"} is not writable (Read-only file system)'


@pytest.fixture
def small_disk(small_checkpoint, tmp_path):
    """A file system with room for one checkpoint of the 4-layer config and a half (a tmpfs; needs root)."""
    size = os.path.getsize(small_checkpoint / 'epoch_1.pth') * 3 // 2 + 256 * 1024
    mount = mount_tmpfs(tmp_path / 'small_disk', f'size={size}')
    yield mount
    subprocess.run(['umount', str(mount)], check=True)


def test_a_full_disk_during_a_save_is_one_line_and_the_last_checkpoint_survives(fashion_mnist, small_disk):
    work = small_disk / 'work'
    every_epoch = ['default_hooks.checkpoint.interval=1']
    full = run([PY, 'tools/train.py', SMALL_CFG] + small_train_options(fashion_mnist, work, epochs=2) + every_epoch)
    assert full.returncode != 0
    assert last_line(full) == (
        f'error: No space left on device while writing into {work}; the last complete checkpoint is '
        f'{work / "epoch_1.pth"} (--resume continues from it once there is space)'
    )
    assert 'Traceback' not in full.stderr
    assert torch.load(work / 'epoch_1.pth', weights_only=False)['meta']['epoch'] == 1
    assert osp.exists(work / 'epoch_2.pth.partial')
    # the next start removes the half-written file (and says so) before it writes anything
    (work / 'epoch_1.pth').unlink()  # room for one new checkpoint once the partial file is gone
    (work / 'last_checkpoint').unlink()
    again = run([PY, 'tools/train.py', SMALL_CFG] + small_train_options(fashion_mnist, work, epochs=1))
    assert again.returncode == 0, again.stderr[-3000:]
    assert f'removed {work / "epoch_2.pth.partial"}, left by an interrupted save' in again.stdout + again.stderr
    assert not osp.exists(work / 'epoch_2.pth.partial')


@pytest.mark.parametrize('kind', ['bare-state-dict', 'converted-backbone', 'dino-mode', 'classifier'])
def test_resume_of_another_kind_of_checkpoint_is_one_line(fashion_mnist, small_checkpoint, tmp_path, kind):
    trained = torch.load(small_checkpoint / 'epoch_1.pth', weights_only=False)
    state = trained['state_dict']
    path = tmp_path / f'{kind}.pth'
    if kind == 'bare-state-dict':
        torch.save(state, path)
        expected = 'is not a training checkpoint (it has no optimizer and loop state to continue)'
    elif kind == 'converted-backbone':
        run_main('tools/model_converters/mst_to_backbone.py', small_checkpoint / 'epoch_1.pth', path)
        expected = 'is not a training checkpoint'
    elif kind == 'dino-mode':  # the same run without decoder and mask token
        dino = {k: v for k, v in state.items() if not k.startswith('decoder.') and 'mask_token' not in k}
        torch.save(dict(trained, state_dict=dino), path)
        expected = "does not fit this config's model: "
    else:  # an image classifier's checkpoint (backbone + linear head)
        classifier = {k: v for k, v in state.items() if k.startswith('backbone.')}
        classifier.update({'head.fc.weight': torch.zeros(10, 128), 'head.fc.bias': torch.zeros(10)})
        torch.save(dict(trained, state_dict=classifier), path)
        expected = "does not fit this config's model: "
    result = run_main('tools/train.py', SMALL_CFG, '--resume', path,
                      *small_train_options(fashion_mnist, tmp_path / 'work', epochs=2))  # fmt: skip
    assert result.returncode != 0
    assert last_line(result).startswith(f'error: --resume: {path} ') and expected in last_line(result)
    assert 'Traceback' not in result.stderr


@pytest.mark.parametrize('tool', ['knn_eval', 'converter'])
def test_evaluation_tools_name_a_truncated_checkpoint(fashion_mnist, small_checkpoint, tmp_path, tool):
    half = tmp_path / 'half.pth'
    data = (small_checkpoint / 'epoch_1.pth').read_bytes()
    half.write_bytes(data[: len(data) // 2])
    if tool == 'knn_eval':
        result = run_main('tools/analysis_tools/knn_eval.py', SMALL_CFG, half, *knn_data(fashion_mnist))
    else:
        result = run_main('tools/model_converters/mst_to_backbone.py', half, tmp_path / 'out.pth')
    assert result.returncode != 0 and 'Traceback' not in result.stderr
    assert last_line(result).startswith(f'error: {half}: not a readable PyTorch checkpoint')


def test_a_folder_of_unreadable_images_with_skipping_on_says_none_could_be_read(imagenet_tree, tmp_path):
    root = imagenet_copy(imagenet_tree, tmp_path)
    for image in (root / 'train' / 'n01440764').iterdir():
        image.write_text('not an image')
    result = run(
        [PY, 'tools/train.py', IMAGENET_CFG, '--work-dir', str(tmp_path / 'work'), '--cfg-options',
         f'train_dataloader.dataset.data_root={root}', 'train_dataloader.dataset.pipeline.0.skip_unreadable=True',
         'train_dataloader.batch_size=2', 'train_dataloader.num_workers=1', 'train_dataloader.persistent_workers=False']
    )  # fmt: skip
    assert result.returncode != 0
    line = last_line(result)
    assert line.startswith('error: none of the 100 images tried could be read (the last: '), line
    assert 'skipping unreadable images cannot help' in line and 'Cannot find valid image' not in result.stderr


def test_fewer_samples_than_one_batch_is_one_line_not_an_empty_run(fashion_mnist, tmp_path):
    """A small folder of one's own images with the config's batch size: no batch at all (drop_last), said at start."""
    options = small_train_options(fashion_mnist, tmp_path)
    options[options.index('train_dataloader.batch_size=2')] = 'train_dataloader.batch_size=16'
    result = run([PY, 'tools/train.py', SMALL_CFG] + options)
    assert result.returncode == 1
    assert last_line(result) == (
        'error: train_dataloader yields no batch: 8 samples for batch_size 16 on 1 process(es) with drop_last=True; '
        'lower train_dataloader.batch_size or add data'
    )
