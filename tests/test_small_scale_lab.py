"""projects/small_scale_lab: arm names -> config overrides, the results table and curves, and a tiny end-to-end
run of ``python -m projects.small_scale_lab.mask_ablation``."""

import json
import os.path as osp

import pytest
from mmengine.config import Config

from projects.small_scale_lab import arms
from projects.small_scale_lab import results as lab
from tests.helpers import PY, ROOT, SMALL_CFG, run, run_main

MODULE = 'projects.small_scale_lab.mask_ablation'
RUNNER = [PY, '-m', MODULE]


def build_arm(arm):
    from mmpretrain.registry import MODELS

    cfg = Config.fromfile(SMALL_CFG)
    cfg.merge_from_dict(arms.arm_overrides(arm))
    return cfg, MODELS.build(cfg.model)


def test_base_arms_follow_the_paper():
    _, dino = build_arm('dino')
    assert dino.mask_generator is None and dino.decoder is None
    _, rand = build_arm('random')
    assert type(rand.mask_generator).__name__ == 'RandomMaskGenerator' and rand.mask_generator.prob == 0.15
    assert rand.decoder is None
    _, attention = build_arm('attention')
    assert (attention.mask_generator.num, attention.mask_generator.prob) == (8, 0.5) and attention.decoder is None
    _, mst = build_arm('mst')
    assert (mst.mask_generator.num, mst.mask_generator.prob) == (8, 0.5) and mst.decoder is not None


def test_arm_settings_reach_the_model_and_optimizer():
    cfg, model = build_arm('mst-num4-p0.9-lambda0.3-warmup0-lr0.001')
    assert type(model.mask_generator).__name__ == 'AttentionGuidedMaskGenerator'
    assert (model.mask_generator.num, model.mask_generator.prob) == (4, 0.9)
    assert model.decoder.loss_weight == 0.3
    assert model.head.warmup_teacher_temp_epochs == 0 and model.head.teacher_temp == model.head.teacher_temp_final
    assert cfg.optim_wrapper.optimizer.lr == 0.001
    _, rand = build_arm('random-p0.5')
    assert rand.mask_generator.prob == 0.5
    # a fresh dict per call: merging one (mmengine consumes `_delete_`) leaves the next intact
    assert arms.arm_overrides('random') == arms.arm_overrides('random')


@pytest.mark.parametrize(
    'arm, message',
    [
        ('mae', "the base must be one of dino, random, attention, mst, high, hint, block, got 'mae'"),
        ('block-reveal0.1', "setting(s) reveal do not apply to 'block'"),
        ('mst-q3', "cannot read setting 'q3'"),
        ('mst-num4-num8', "cannot read setting 'num8'"),
        ('mst-lr1e-3', "cannot read setting 'lr1e'"),
        ('dino-p0.5', "setting(s) p do not apply to 'dino'"),
        ('attention-lambda2', "setting(s) lambda do not apply to 'attention'"),
    ],
)
def test_bad_arm_names_are_refused_by_name(arm, message):
    with pytest.raises(ValueError) as err:
        arms.arm_overrides(arm)
    assert repr(arm) in str(err.value) and message in str(err.value)


def test_related_mask_arms_keep_the_decoder():
    _, high = build_arm('high')
    assert type(high.mask_generator).__name__ == 'HighAttentionMaskGenerator'
    assert high.mask_generator.ratio == (0.1, 0.5) and high.mask_generator.hint == 0 and high.decoder is not None
    _, hint = build_arm('hint-ratio0.4-reveal0.2-lambda0.5')
    assert (hint.mask_generator.ratio, hint.mask_generator.hint) == ((0.4, 0.4), 0.2)
    assert hint.decoder.loss_weight == 0.5
    _, block = build_arm('block-ratio0.3')
    assert type(block.mask_generator).__name__ == 'BlockMaskGenerator' and block.mask_generator.ratio == (0.3, 0.3)
    assert block.backbone.mask_token is not None


def test_bad_arm_value_reaches_the_model_check():
    with pytest.raises(ValueError, match='prob must be in \\[0, 1\\], got 1.5'):
        build_arm('mst-p1.5')


def test_tiny_ablation_run_with_knn_curves(fashion_mnist, tmp_path):  # noqa: F811
    budget = ['--max-epochs', '2', '--train-size', '64', '--bank-size', '64', '--query-size', '32']
    command = [*RUNNER, '--data-root', fashion_mnist, '--work-dir', str(tmp_path), '--seeds', '0']
    result = run([*command, '--arms', 'dino', 'mst-num2-p0.9', '--knn-interval', '1', *budget])
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]

    results = json.load(open(tmp_path / 'results.json'))
    assert set(results) == {'dino_seed0', 'mst-num2-p0.9_seed0'}
    dino, mst = results['dino_seed0'], results['mst-num2-p0.9_seed0']
    for r in (dino, mst):
        assert r['iterations'] == 2  # 64 images / batch 64, 2 epochs
        # the monitor evaluates on the final bank and queries: the curve ends at the final figure
        assert len(r['knn_top1_per_epoch']) == 2
        assert r['knn_top1_per_epoch'][-1] == pytest.approx(r['knn_top1_mst'], abs=1e-6)
    assert dino['masked_fraction'] == 0.0
    # num 2: the lower half of the 49 patches (24) are candidates, each masked with p 0.9 -> about 44 %
    assert 0.3 < mst['masked_fraction'] <= 24 / 49
    # every run against its own untrained network: the decoder and [MASK] token change what the seed draws
    assert dino['knn_top1_random_init'] != mst['knn_top1_random_init']
    assert dino['knn_top1_raw_pixels'] == mst['knn_top1_raw_pixels']
    assert dino['knn_top1_raw_pixels'] == 100.0  # the stripes make raw pixels a perfect feature here
    table = open(tmp_path / 'results.md').read()
    assert '| mst-num2-p0.9 |' in table and '| random init (not trained) |' in table
    gain = mst['knn_top1_mst'] - mst['knn_top1_random_init']
    assert f'| mst-num2-p0.9 | {mst["knn_top1_mst"]:.2f} ± 0.00 | {gain:+.2f} ± 0.00 | 1 |' in table
    pictures = ('knn_curves.png', 'dino_losses.png', 'teacher_entropy.png', 'kl_teacher_student.png')
    for picture in (*pictures, 'dino_seed0/attention_and_masks.png'):
        assert osp.getsize(tmp_path / picture) > 0, picture

    # repeating the command skips finished runs; a different budget in the same work dir is refused
    again = run([*command, '--arms', 'dino', *budget])
    assert again.returncode == 0 and 'pretraining' not in again.stdout
    assert json.load(open(tmp_path / 'results.json')) == results
    other = run_main(MODULE, *command[len(RUNNER) :], '--arms', 'dino', *budget[:-2], '--query-size', '16')
    assert other.returncode != 0 and 'give another --work-dir or the same budget' in other.stderr
    assert 'Traceback' not in other.stderr


def test_shared_init_starts_every_arm_of_a_seed_from_one_network(fashion_mnist, tmp_path):  # noqa: F811
    # lr 0: training leaves the loaded start unchanged, so each trained teacher shows where its Runner started
    command = [*RUNNER, '--data-root', fashion_mnist, '--work-dir', str(tmp_path), '--seeds', '0', '--shared-init']
    budget = ['--max-epochs', '1', '--train-size', '64', '--bank-size', '64', '--query-size', '32']
    result = run([*command, '--arms', 'dino', 'mst', *budget, '--cfg-options', 'optim_wrapper.optimizer.lr=0.0'])
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]

    results = json.load(open(tmp_path / 'results.json'))
    dino, mst = results['dino_seed0'], results['mst_seed0']
    assert dino['budget']['shared_init'] is True
    assert osp.isfile(tmp_path / 'init_seed0.pth')
    # one start for both arms (without --shared-init the decoder moves DINO's start: the tiny run's test above)
    assert dino['knn_top1_random_init'] == mst['knn_top1_random_init']
    for r in (dino, mst):  # the Runner trained from the shared weights, not from its own draw
        assert r['knn_top1_mst'] == pytest.approx(r['knn_top1_random_init'], abs=1e-6)


def test_table_gain_is_over_each_runs_own_untrained_network():
    def run_(arm, seed, knn, **baselines):
        return f'{arm}_seed{seed}', dict(arm=arm, seed=seed, knn_top1_mst=knn, masked_fraction=0.1, **baselines)

    results = dict(
        [
            run_('mst', 0, 52.0, knn_top1_random_init=50.0, knn_top1_raw_pixels=80.0),
            run_('mst', 1, 61.0, knn_top1_random_init=60.0, knn_top1_raw_pixels=81.0),
            run_('dino', 0, 49.0, knn_top1_random_init=52.0, knn_top1_raw_pixels=80.0),  # its own start
            run_('dino', 1, 58.0),  # written before every run had one: the seed's (60.0)
            run_('block', 2, 70.0),  # seed 2 has no untrained network in this work dir
        ]
    )
    rows = {line.split(' | ')[0][2:]: line.split(' | ')[1:] for line in lab.results_table(results).splitlines()}
    assert rows['mst'][:3] == ['56.50 ± 6.36', '+1.50 ± 0.71', '2']  # gains 2 and 1
    assert rows['dino'][:2] == ['53.50 ± 6.36', '-2.50 ± 0.71']  # gains -3 and -2
    assert rows['block'][:2] == ['70.00 ± 0.00', '-']
    assert rows['random init (not trained)'][:3] == ['54.00 ± 5.29', '-', '3']
    assert rows['raw pixels'][0] == '80.50 ± 0.71'  # once per seed


def test_knn_gain_curves_average_each_arms_seeds_over_their_own_start():
    results = {
        'mst_seed0': dict(arm='mst', seed=0, knn_top1_per_epoch=[51.0, 53.0], knn_top1_random_init=50.0),
        'mst_seed1': dict(arm='mst', seed=1, knn_top1_per_epoch=[62.0, 62.0], knn_top1_random_init=60.0),
        'dino_seed1': dict(arm='dino', seed=1, knn_top1_per_epoch=[59.0, 61.0]),  # older file: the seed's start
        'block_seed2': dict(arm='block', seed=2, knn_top1_per_epoch=[70.0, 71.0]),  # no start: no line
        'random_seed0': dict(arm='random', seed=0, knn_top1_random_init=55.0),  # no curve: no line
    }
    assert lab.knn_gain_curves(results) == {
        'mst (mean of 2 seeds)': [(1, 1.5), (2, 2.5)],
        'dino': [(1, -1.0), (2, 1.0)],
    }


def test_arm_curves_average_each_arms_seeds_at_shared_iterations(tmp_path):
    def logged(run_key, rows):
        vis_data = tmp_path / run_key / '20261129_000000' / 'vis_data'
        vis_data.mkdir(parents=True)
        (vis_data / 'scalars.json').write_text(''.join(json.dumps(row) + '\n' for row in rows))

    logged(
        'mst_seed0',
        [dict(step=20, teacher_entropy=3.0), dict(step=40, teacher_entropy=2.0), dict(step=40, knn_top1=60)],
    )
    logged(
        'mst_seed1',
        [dict(step=20, teacher_entropy=4.0), dict(step=40, teacher_entropy=3.0), dict(step=60, teacher_entropy=1.0)],
    )
    logged('dino_seed0', [dict(step=20, teacher_entropy=4.1)])
    logged('block_seed0', [dict(step=20, loss_dino=4.0)])  # never logged the key: no line
    results = {
        key: dict(arm=key.split('_')[0], seed=int(key[-1]))
        for key in ('mst_seed0', 'mst_seed1', 'dino_seed0', 'block_seed0')
    }

    curves = lab.arm_curves(results, str(tmp_path), 'teacher_entropy')
    assert curves == {'mst (mean of 2 seeds)': [(20, 3.5), (40, 2.5)], 'dino': [(20, 4.1)]}  # 60: seed 1 only
    assert lab.plot_arm_curves(results, str(tmp_path), 'teacher_entropy', str(tmp_path / 'entropy.png'))
    assert not lab.plot_arm_curves(results, str(tmp_path), 'no_such_key', str(tmp_path / 'none.png'))
    assert (tmp_path / 'entropy.png').stat().st_size > 0 and not (tmp_path / 'none.png').exists()


def _record_many(results_file, prefix, count):
    for i in range(count):
        lab.record_run(results_file, f'{prefix}{i}', dict(seed=i))


def test_runner_processes_sharing_a_work_dir_keep_each_others_runs(tmp_path):
    import multiprocessing

    results_file = str(tmp_path / 'results.json')
    lab.record_run(results_file, 'earlier', dict(seed=0))
    context = multiprocessing.get_context('fork')
    writers = [context.Process(target=_record_many, args=(results_file, prefix, 40)) for prefix in ('a', 'b')]
    for writer in writers:
        writer.start()
    for writer in writers:
        writer.join(timeout=60)
        assert writer.exitcode == 0
    results = json.load(open(results_file))
    assert set(results) == {'earlier'} | {f'{p}{i}' for p in 'ab' for i in range(40)}


@pytest.mark.parametrize('max_epochs', [2, 8])
def test_budget_moves_schedules_to_the_new_length(max_epochs, tmp_path):
    from mmmst.apis import budgeted_cfg

    cfg = budgeted_cfg(SMALL_CFG, str(tmp_path), 'data', 64, 64, 32, max_epochs)
    assert cfg.train_cfg.max_epochs == max_epochs
    warmup, cosine, weight_decay = cfg.param_scheduler
    assert (warmup.begin, warmup.end) == (0, 1)  # the lr warm-up keeps its one epoch
    # the lr cosine and the weight-decay cosine still run to the last epoch, shorter or longer than the demo's 5
    assert (cosine.begin, cosine.end, cosine.T_max) == (1, max_epochs, max_epochs - 1)
    assert (weight_decay.begin, weight_decay.end) == (0, max_epochs)
    assert cfg.train_dataloader.dataset.indices == 64 and cfg.knn_query_dataloader.dataset.indices == 32


def test_the_experiment_logs_snippets_run_as_written_today():
    """The Python blocks of the lab's experiment log compile, and their imports resolve against today's package
    (the runs they read are the lab's, not the test's)."""
    import ast
    import re

    log = open(osp.join(ROOT, 'projects/small_scale_lab/experiment_log.md')).read()
    blocks = re.findall(r'```python\n(.*?)```', log, re.S)
    assert len(blocks) >= 3
    for block in blocks:
        tree = ast.parse(block)
        imports = [node for node in tree.body if isinstance(node, (ast.Import, ast.ImportFrom))]
        exec(compile(ast.Module(body=imports, type_ignores=[]), '<experiment log>', 'exec'), {})


CONTINUE = 'projects.small_scale_lab.continue_pretraining'


def _continue_command(fashion_mnist, tmp_path, *options):
    # the demo's recipe at batch 8: the 64-image set has 6 or 7 images of each class
    config = tmp_path / 'demo_batch8.py'
    demo = osp.join(ROOT, 'configs/mst/mst_vit-2l128-p4_1xb64-coslr-10e_fashion-mnist.py')
    config.write_text(f'_base_ = [{demo!r}]\ntrain_dataloader = dict(batch_size=8)\n')
    return [PY, '-m', CONTINUE, '--config', str(config), '--data-root', fashion_mnist, '--work-dir',
            str(tmp_path / 'work'), '--seeds', '0', '--source-epochs', '1', '--source-per-class', '6',
            '--per-class', '6', '--queries-per-class', '3', *options]  # fmt: skip


def test_tiny_continue_run_starts_from_the_imported_source_and_head_first_keeps_it(fashion_mnist, tmp_path):  # noqa: F811
    import torch

    command = _continue_command(fashion_mnist, tmp_path, '--epochs', '1')
    result = run([*command, '--arms', 'scratch', 'naive', 'head-first'])
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    work = tmp_path / 'work'
    results = json.load(open(work / 'results.json'))
    assert set(results) == {'source', 'scratch_seed0', 'naive_seed0', 'head-first_seed0'}
    assert 'knn_top1_source' in results['head-first_seed0'] and 'knn_top1_source' not in results['scratch_seed0']

    def backbone(path, prefix):
        state = torch.load(path, map_location='cpu', weights_only=False)['state_dict']
        return {k[len(prefix) :]: v for k, v in state.items() if k.startswith(prefix) and 'mask_token' not in k}

    # the source's teacher backbone went out to timm and back unchanged: the weights every continued arm loads
    source = backbone(work / 'source' / 'epoch_1.pth', 'teacher.module.backbone.')
    imported = backbone(work / 'source_imported.pth', 'backbone.')
    assert imported.keys() == source.keys() and all(torch.equal(imported[k], source[k]) for k in source)
    # head first, one epoch of one: the student backbone has not moved from the imported weights, nor the teacher
    # (its EMA of equal weights, up to rounding); the naive recipe's student has (so the frozen one is not a run
    # that never stepped)
    student = backbone(work / 'seed0' / 'head-first' / 'epoch_1.pth', 'backbone.')
    assert all(torch.equal(student[k], imported[k]) for k in imported)
    teacher = backbone(work / 'seed0' / 'head-first' / 'epoch_1.pth', 'teacher.module.backbone.')
    assert all(torch.allclose(teacher[k], imported[k], rtol=0, atol=1e-7) for k in imported)
    moved = backbone(work / 'seed0' / 'naive' / 'epoch_1.pth', 'backbone.')
    assert not all(torch.equal(moved[k], imported[k]) for k in imported)
    table = open(work / 'results.md').read()
    assert '| (a) starting backbone (imported) |' in table and '| (b) continued, head-first |' in table

    # the same command again skips finished runs; another budget in the same work dir is refused, naming both
    again = run([*command, '--arms', 'head-first'])
    assert again.returncode == 0 and 'arm head-first' not in again.stdout
    other = run_main(CONTINUE, *command[3:-2], '--epochs', '2', '--arms', 'head-first')
    assert other.returncode != 0 and "'epochs': 1" in other.stderr and "'epochs': 2" in other.stderr
    assert 'give another --work-dir or the same budget' in other.stderr


def test_continue_arms_levers_reach_the_optimizer_and_hooks(tmp_path):
    import argparse

    import numpy as np
    from mmengine.optim import build_optim_wrapper
    from mmpretrain.registry import MODELS

    from projects.small_scale_lab import continue_pretraining as lab_continue

    args = argparse.Namespace(config=lab_continue.CONFIG, data_root=str(tmp_path), source_epochs=1, epochs=2,
                              source_per_class=6, per_class=6, queries_per_class=3)  # fmt: skip
    labels = np.arange(60) % 10

    def arm(name):
        levers = lab_continue.ARMS[name]
        return lab_continue.arm_cfg(args, name, 0, lab_continue.TARGET_CLASSES, str(tmp_path), levers, labels, labels)

    cfg = arm('slow-backbone')
    model = MODELS.build(cfg.model)
    optimizer = build_optim_wrapper(model, cfg.optim_wrapper).optimizer
    lr_of = {id(p): group['lr'] for group in optimizer.param_groups for p in group['params']}
    for name, param in model.named_parameters():
        if param.requires_grad:
            assert lr_of[id(param)] == pytest.approx(1e-4 if name.startswith('backbone.') else 1e-3), name
    hooks = [h for h in cfg.custom_hooks if h.get('module_name') == 'backbone']
    assert len(hooks) == 1 and hooks[0]['freeze_epochs'] == 1

    # the other levers that are not plain config keys: DINO's prototype freeze dropped, the warm-up's start factor
    def prototype_freezes(cfg):
        return [h for h in cfg.custom_hooks if h['type'] == 'FreezeLastLayerHook' and 'module_name' not in h]

    assert len(prototype_freezes(arm('head-first'))) == 1 and prototype_freezes(arm('head-first-prototypes')) == []
    assert len([h for h in arm('head-first-prototypes').custom_hooks if h.get('module_name') == 'backbone']) == 1
    assert arm('head-first').param_scheduler[0].start_factor == 1e-3  # the demo's warm-up
    assert arm('head-first-no-warmup').param_scheduler[0].start_factor == 1.0
