"""Fashion-MNIST without the Debian package: torchvision's download from a mirror, MD5 checked, against a real local
HTTP server (no network); and the one line that names both ways when neither works."""

import functools
import gzip
import hashlib
import http.server
import os
import shutil
import threading

import pytest

from mmmst.datasets.fashion_mnist import (
    IDX_FILES,
    FashionMNISTUnavailableError,
    missing_fashion_mnist,
    prepare_fashion_mnist,
)
from tests.helpers import PY, last_line, run, write_fashion_mnist

NAMES = [name for files in IDX_FILES.values() for name in files]


@pytest.fixture
def mirror(tmp_path):
    """(URL, folder served, resources): a local HTTP server serving the four .gz files of a small Fashion-MNIST, and
    their (name, MD5) as torchvision lists them."""
    idx = tmp_path / 'idx'
    idx.mkdir()
    write_fashion_mnist(idx)
    served = tmp_path / 'served'
    served.mkdir()
    resources = []
    for name in NAMES:
        with open(idx / name, 'rb') as src, gzip.open(served / f'{name}.gz', 'wb') as dst:
            shutil.copyfileobj(src, dst)
        resources.append((f'{name}.gz', hashlib.md5((served / f'{name}.gz').read_bytes()).hexdigest()))
    handler = functools.partial(QuietHandler, directory=str(served))
    server = http.server.ThreadingHTTPServer(('127.0.0.1', 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f'http://127.0.0.1:{server.server_address[1]}/', served, resources, idx
    server.shutdown()


class QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args):
        pass


def test_without_the_debian_package_the_files_are_downloaded_and_checked(mirror, tmp_path):
    url, _, resources, idx = mirror
    data, lines = tmp_path / 'data', []
    prepare_fashion_mnist(
        str(data), log=lines.append, mirrors=[url], resources=resources, debian_dir=str(tmp_path / 'none')
    )
    assert missing_fashion_mnist(str(data)) == []
    for name in NAMES:
        assert (data / name).read_bytes() == (idx / name).read_bytes()
    assert f'[data] downloading {url}train-images-idx3-ubyte.gz' in lines
    assert lines[-1] == f'[data] Fashion-MNIST ready in {data} (downloaded, MD5 checked)'
    assert not [n for n in os.listdir(data) if n.endswith('.partial')]


def test_a_corrupted_download_is_refused_and_removed(mirror, tmp_path):
    url, served, resources, _ = mirror
    damaged = bytearray((served / 't10k-labels-idx1-ubyte.gz').read_bytes())
    damaged[-5] ^= 0xFF
    (served / 't10k-labels-idx1-ubyte.gz').write_bytes(bytes(damaged))
    data = tmp_path / 'data'
    with pytest.raises(FashionMNISTUnavailableError) as refused:
        prepare_fashion_mnist(
            str(data), log=lambda line: None, mirrors=[url], resources=resources, debian_dir=str(tmp_path / 'none')
        )
    expected = dict(resources)['t10k-labels-idx1-ubyte.gz']
    assert f'{url}t10k-labels-idx1-ubyte.gz: MD5 {hashlib.md5(damaged).hexdigest()} instead of {expected}' in str(
        refused.value
    )
    assert not (data / 't10k-labels-idx1-ubyte').exists()
    assert not (data / 'downloads' / 't10k-labels-idx1-ubyte.gz').exists()
    assert missing_fashion_mnist(str(data)) == ['t10k-labels-idx1-ubyte']  # the good files are kept


def test_the_preparer_without_apt_get_or_network_names_both_ways_in_one_line(mirror, tmp_path):
    """The command a user runs, on a machine without apt-get (not Debian, or not root) whose mirror does not have
    the original files (here: our small ones, whose MD5 is not torchvision's): one line, exit 1."""
    url = mirror[0]
    data = tmp_path / 'data'
    result = run(
        [PY, 'tools/dataset_converters/prepare_fashion_mnist.py', str(data), '--debian-dir', str(tmp_path / 'none')],
        extra_env=dict(PATH=str(tmp_path / 'no_apt'), MMMST_FASHION_MNIST_MIRROR=url),
    )
    assert result.returncode == 1, result.stderr[-2000:]
    line = last_line(result)
    assert line.startswith('error: Fashion-MNIST could not be downloaded (') and 'MD5' in line
    assert 'apt-get install dataset-fashion-mnist' in line and 'MMMST_FASHION_MNIST_MIRROR' in line


def test_the_preparer_without_apt_get_copies_a_folder_of_the_packages_files(mirror, tmp_path):
    """Not root, not Debian (no apt-get on the PATH), but the package's .gz files copied to a folder of one's own
    (here: the served ones): the preparer un-gzips them from there and the data is ready, nothing downloaded."""
    _, served, _, idx = mirror
    data = tmp_path / 'data'
    result = run(
        [PY, 'tools/dataset_converters/prepare_fashion_mnist.py', str(data), '--debian-dir', str(served)],
        extra_env=dict(PATH=str(tmp_path / 'no_apt'), MMMST_FASHION_MNIST_MIRROR='http://127.0.0.1:9/'),
    )
    assert result.returncode == 0, result.stderr[-2000:]
    assert f'[data] Fashion-MNIST ready in {data} (from {served})' in result.stdout
    for name in NAMES:
        assert (data / name).read_bytes() == (idx / name).read_bytes()
