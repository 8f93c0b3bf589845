"""The rooms' floors of docs/design.md hold: every import inside the package goes to its own room or to a room on
a floor below."""

import ast
import os
import os.path as osp
import re

from tests.helpers import ROOT

PACKAGE = osp.join(ROOT, 'mmmst')
#: the compatibility aliases of rooms that moved: they import their new home by design
FORMER_HOMES = {'utils', 'engine/__init__.py', 'engine/hooks/__init__.py', 'models/utils/__init__.py'}


def floors():
    line = re.search(r'```floors\n(.*?)\n```', open(osp.join(ROOT, 'docs/design.md')).read(), re.S).group(1)
    return {room.strip(): level for level, rooms in enumerate(line.split('>')) for room in rooms.split(',')}


def imports_of(path, module):
    package = module if path.endswith('__init__.py') else module.rsplit('.', 1)[0]
    for node in ast.walk(ast.parse(open(path).read())):
        if isinstance(node, ast.ImportFrom) and node.level:
            base = package.split('.')[: len(package.split('.')) - node.level + 1]
            yield node.lineno, '.'.join(base + ([node.module] if node.module else []))
        elif isinstance(node, ast.ImportFrom) and (node.module or '').startswith('mmmst.'):
            yield node.lineno, node.module
        elif isinstance(node, ast.Import):
            yield from ((node.lineno, a.name) for a in node.names if a.name.startswith('mmmst.'))


def test_every_import_goes_to_its_room_or_below():
    level = floors()
    checked = 0
    for folder, _, files in os.walk(PACKAGE):
        for name in files:
            path = osp.join(folder, name)
            relative = osp.relpath(path, PACKAGE)
            if (
                not name.endswith('.py')
                or relative == '__init__.py'
                or any(relative == h or relative.startswith(h + os.sep) for h in FORMER_HOMES)
            ):
                continue
            module = 'mmmst.' + relative[:-3].replace(os.sep, '.').removesuffix('.__init__')
            room = module.split('.')[1]
            assert room in level, f'{relative}: room {room!r} is not on a floor of docs/design.md'
            for line, target in imports_of(path, module):
                other = target.split('.')[1]
                checked += 1
                assert other == room or level[other] > level[room], (
                    f'{relative}:{line} imports {target}: {room} may import only rooms below it'
                )
    assert checked > 50
