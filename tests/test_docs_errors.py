"""docs/errors.md stays true to the suite: every row of its table names a test module that exists."""

import os.path as osp
import re

from tests.helpers import ROOT


def rows():
    """``(line number, where, message cell, test cell)`` of each table row of docs/errors.md's first table."""
    lines = open(osp.join(ROOT, 'docs/errors.md')).read().split('\n## ')[0].splitlines()
    for number, line in enumerate(lines, 1):
        cells = [c.strip() for c in line.strip().strip('|').split(' | ')]
        if len(cells) == 4 and not set(cells[0]) <= set('- ') and cells[0] != 'input':
            yield number, cells[1], cells[2], cells[3]


def test_every_row_names_a_test_module_that_exists():
    assert len(list(rows())) > 40
    for line, _, _, tests in rows():
        named = re.findall(r'`(test_\w+\.py)`', tests)
        assert named, f'docs/errors.md row at line {line} names no test'
        for name in named:
            assert osp.isfile(osp.join(ROOT, 'tests', name)), f'docs/errors.md row at line {line}: no tests/{name}'
