"""No command deletes or overwrites a file it did not write (docs/design.md): a user's file in a command's way is
refused in one line naming it and what it is, and is left as it was; a damaged input is named where it is found."""

import gzip
import os
import shutil

import pytest
import torch

from tests.helpers import DEMO_CFG, PY, SMALL_CFG, copy_run, last_line, run, run_main, small_train_options

PREPARER = 'tools/dataset_converters/prepare_fashion_mnist.py'
IDX_NAMES = ('train-images-idx3-ubyte', 'train-labels-idx1-ubyte', 't10k-images-idx3-ubyte', 't10k-labels-idx1-ubyte')


def contents(folder):
    """Every file under ``folder`` with its bytes."""
    return {
        os.path.relpath(os.path.join(d, n), folder): open(os.path.join(d, n), 'rb').read()
        for d, _, names in os.walk(folder)
        for n in names
    }


# --- tools/train.py --start-over -----------------------------------------------------------------------------------


def test_start_over_from_a_checkpoint_it_would_replace_is_refused_and_deletes_nothing(
    fashion_mnist, one_epoch_run, tmp_path
):
    """load_from=<work dir>/epoch_1.pth --start-over: the new run would write epoch_1.pth over the weights it
    starts from; refused in one line before anything is deleted."""
    work = copy_run(one_epoch_run, tmp_path / 'work')
    before = contents(work)
    options = small_train_options(fashion_mnist, work) + [f'load_from={work / "epoch_1.pth"}']
    result = run_main('tools/train.py', SMALL_CFG, '--start-over', *options)
    assert result.returncode == 1
    assert last_line(result) == (
        f'error: --start-over: load_from {work / "epoch_1.pth"} is a checkpoint under a name the new run writes in '
        f'this work dir, and would be replaced at that point; copy it out of {work} and set load_from to the copy, '
        'or give another --work-dir'
    )
    assert contents(work) == before


def test_a_users_file_under_a_checkpoint_name_is_refused_with_or_without_start_over(
    fashion_mnist, one_epoch_run, tmp_path
):
    work = copy_run(one_epoch_run, tmp_path / 'work')
    (work / 'epoch_3.pth').write_text('my notes on epoch 3')
    before = contents(work)
    for flags in ((), ('--start-over',)):
        result = run_main('tools/train.py', SMALL_CFG, *flags, *small_train_options(fashion_mnist, work))
        assert result.returncode == 1
        assert last_line(result) == (
            f'error: {work / "epoch_3.pth"} is not a PyTorch checkpoint, and this run would overwrite it (its name '
            'is one a run gives its checkpoints); move it out of the work dir or give another --work-dir'
        )
        assert contents(work) == before


def test_resume_and_start_over_together_are_refused(fashion_mnist, one_epoch_run, tmp_path):
    work = copy_run(one_epoch_run, tmp_path / 'work')
    before = contents(work)
    options = small_train_options(fashion_mnist, work)
    result = run_main('tools/train.py', SMALL_CFG, '--resume', '--start-over', *options)
    assert result.returncode == 2
    assert last_line(result).endswith('error: argument --start-over: not allowed with argument --resume')
    assert contents(work) == before


# --- converters ----------------------------------------------------------------------------------------------------


@pytest.fixture
def timm_vit(tmp_path):
    """A timm state dict of the demo config's backbone shape (what timm_to_mst.py reads)."""
    import timm
    from mmengine.config import Config

    from mmmst.apis.timm_format import timm_vit_kwargs

    model = timm.models.VisionTransformer(**timm_vit_kwargs(Config.fromfile(DEMO_CFG).model.backbone))
    torch.save(model.state_dict(), tmp_path / 'timm.pth')
    return tmp_path / 'timm.pth'


@pytest.mark.parametrize(
    'content, what',
    [
        (b'my notes', 'is not a PyTorch checkpoint'),
        (b'', 'is empty (0 bytes)'),
        (None, 'is a PyTorch checkpoint of another kind'),  # a timm state dict where MST weights go
    ],
)
def test_the_importer_refuses_to_replace_a_file_it_did_not_write(timm_vit, tmp_path, content, what):
    dst = tmp_path / 'notes.txt'
    dst.write_bytes(timm_vit.read_bytes() if content is None else content)
    before = dst.read_bytes()
    tool = 'tools/model_converters/timm_to_mst.py'
    refused = run_main(tool, timm_vit, dst, '--config', DEMO_CFG)
    assert refused.returncode == 1
    assert last_line(refused) == (
        f"error: the output '{dst}' already exists and {what}, not a backbone checkpoint ({{'state_dict': "
        "{'backbone.<name>': tensor}}); give another file name, or pass --force to replace it"
    )
    assert dst.read_bytes() == before
    forced = run_main(tool, timm_vit, dst, '--config', DEMO_CFG, '--force')
    assert forced.returncode == 0, forced.stderr
    assert set(torch.load(dst, weights_only=True)) == {'state_dict', 'meta'}
    again = run_main(tool, timm_vit, dst, '--config', DEMO_CFG)  # its own output: replaced without --force
    assert again.returncode == 0, again.stderr


@pytest.mark.parametrize('tool', ['tools/model_converters/mst_to_timm.py', 'tools/model_converters/mst_to_backbone.py'])
def test_the_exporters_refuse_to_replace_a_file_they_did_not_write(one_epoch_run, tool, tmp_path):
    dst = tmp_path / 'notes.txt'
    dst.write_text('my notes')
    refused = run_main(tool, one_epoch_run / 'epoch_1.pth', dst)
    assert refused.returncode == 1
    assert last_line(refused).startswith(f"error: the output '{dst}' already exists and is not a PyTorch checkpoint")
    assert dst.read_text() == 'my notes'
    assert run_main(tool, one_epoch_run / 'epoch_1.pth', dst, '--force').returncode == 0
    assert run_main(tool, one_epoch_run / 'epoch_1.pth', dst).returncode == 0  # its own kind now


def test_a_converter_names_what_its_source_is(tmp_path):
    (tmp_path / 'empty.pth').write_bytes(b'')
    for src, what in ((tmp_path, 'is a directory, not a file'), (tmp_path / 'empty.pth', 'is empty (0 bytes)')):
        for tool in ('tools/model_converters/timm_to_mst.py', 'tools/model_converters/mst_to_timm.py'):
            extra = ('--config', DEMO_CFG) if 'timm_to_mst' in tool else ()
            result = run_main(tool, src, tmp_path / 'out.pth', *extra)
            assert last_line(result) == f"error: checkpoint '{src}' {what}", tool
            assert not (tmp_path / 'out.pth').exists()


# --- the data preparer ---------------------------------------------------------------------------------------------


def test_the_preparer_names_a_truncated_idx_file_and_changes_nothing(fashion_mnist, tmp_path):
    data = shutil.copytree(fashion_mnist, tmp_path / 'data')
    for name in IDX_NAMES:  # each cut to half its size, as an interrupted copy leaves it
        path = data / name
        path.write_bytes(path.read_bytes()[: os.path.getsize(path) // 2])
    before = contents(data)
    result = run([PY, PREPARER, str(data)], extra_env=dict(PATH=str(tmp_path / 'no_apt')))
    assert result.returncode == 1
    assert last_line(result) == (
        f'error: {data / "train-images-idx3-ubyte"} is truncated: 25,096 bytes, its header (64, 28, 28) says 50,192; '
        'remove it (or give another folder) and run again to fetch a fresh copy'
    )
    assert contents(data) == before


def test_the_preparer_refuses_images_and_labels_of_different_lengths(fashion_mnist, tmp_path):
    from tests.helpers import write_idx

    data = shutil.copytree(fashion_mnist, tmp_path / 'data')
    write_idx(data / 't10k-labels-idx1-ubyte', torch.zeros(31, dtype=torch.uint8).numpy())
    result = run_main(PREPARER, data)
    assert last_line(result) == (
        f'error: {data}: t10k-images-idx3-ubyte holds 32 images but t10k-labels-idx1-ubyte 31 labels; remove both '
        'and run again to fetch a fresh copy'
    )


def test_the_preparers_own_mistakes_are_one_line_and_leave_nothing_partial(fashion_mnist, tmp_path):
    package = tmp_path / 'package'
    package.mkdir()
    for name in IDX_NAMES:
        with open(os.path.join(fashion_mnist, name), 'rb') as src, gzip.open(package / f'{name}.gz', 'wb') as dst:
            shutil.copyfileobj(src, dst)

    (tmp_path / 'a_file').write_text('mine')
    result = run_main(PREPARER, tmp_path / 'a_file', '--debian-dir', package)
    assert last_line(result) == f'error: {tmp_path / "a_file"} is a file, not a folder; give a folder for the idx files'
    assert (tmp_path / 'a_file').read_text() == 'mine'

    result = run_main(PREPARER, tmp_path / 'data', '--debian-dir', tmp_path / 'a_file')
    assert last_line(result) == f"error: --debian-dir '{tmp_path / 'a_file'}' is a file, not a folder"

    (package / 't10k-labels-idx1-ubyte.gz').unlink()
    result = run_main(PREPARER, tmp_path / 'data', '--debian-dir', package)
    assert last_line(result) == (
        f'error: {package} lacks t10k-labels-idx1-ubyte.gz (the Debian package dataset-fashion-mnist holds all four)'
    )

    (package / 't10k-labels-idx1-ubyte.gz').write_text('not gzip')
    result = run_main(PREPARER, tmp_path / 'data', '--debian-dir', package)
    assert last_line(result).startswith(f'error: {package / "t10k-labels-idx1-ubyte.gz"} is not a readable gzip')
    assert last_line(result).endswith(f'nothing was written to {tmp_path / "data" / "t10k-labels-idx1-ubyte"}')
    assert not [n for n in os.listdir(tmp_path / 'data') if n.endswith('.partial')]

    with gzip.open(package / 't10k-labels-idx1-ubyte.gz', 'wb') as f:  # a gzip of a truncated file
        f.write(open(os.path.join(fashion_mnist, 't10k-labels-idx1-ubyte'), 'rb').read()[:20])
    result = run_main(PREPARER, tmp_path / 'data', '--debian-dir', package)
    assert 'un-gzips to a file that is truncated: 20 bytes' in last_line(result)
    assert not [n for n in os.listdir(tmp_path / 'data') if n.endswith('.partial')]


@pytest.mark.slow
def test_start_over_on_two_processes_deletes_once_and_trains(fashion_mnist, one_epoch_run, free_port, tmp_path):
    """tools/dist_train.sh on 2 gloo processes with --start-over: the run starts (every process checks the folder,
    rank 0 deletes while rank 1 may be reading it), the deletion is named once, and the new run writes its own
    epoch_1.pth. (Whether rank 1 reads a file just as rank 0 deletes it is timing; the code skips such a file.)"""
    work = copy_run(one_epoch_run, tmp_path / 'work')
    before = (work / 'epoch_1.pth').read_bytes()
    options = small_train_options(fashion_mnist, work) + ['randomness.seed=7']
    result = run(
        ['bash', 'tools/dist_train.sh', SMALL_CFG, '2', '--start-over'] + options, extra_env=dict(PORT=free_port())
    )
    assert result.returncode == 0, (result.stdout + result.stderr)[-3000:]
    assert (result.stdout + result.stderr).count("--start-over: deleted the earlier run's epoch_1.pth") == 1
    assert (work / 'epoch_1.pth').read_bytes() != before
