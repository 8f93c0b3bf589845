"""Run mmdet's or mmseg's own tools/train.py or tools/test.py (shipped in their wheels under .mim/tools).

    python tools/benchmarks/codebase_tool.py {mmdet,mmseg} {train,test} <that tool's arguments>
    python tools/benchmarks/codebase_tool.py {mmdet,mmseg} {train,test} --check <that tool's arguments>

Called by tools/benchmarks/<codebase>/dist_{train,test}.sh through tools/dist_launch.sh
(``torch.distributed.run``). With ``--launcher pytorch`` on a machine without a GPU it starts a gloo process group
and selects mmmst's CPU model wrapper first (mmengine's launcher assumes CUDA), so the same command checks a
config and a data layout on a laptop before GPUs are booked.

``--check`` is what the launchers run once, in one process, before they start the ranks: it verifies that the full
tier is installed (mmcv with its compiled ops, and the codebase) and that the data the config reads exists, and
exits with one line naming what is missing instead of a traceback from every rank.
"""

import importlib.util
import os.path as osp
import runpy
import sys

CODEBASES = ('mmdet', 'mmseg')
TOOLS = ('train', 'test')
# the loaders a tool reads: fine-tuning evaluates on the validation set after each interval
LOADERS = {'train': ('train_dataloader', 'val_dataloader'), 'test': ('test_dataloader',)}


def find(name: str, parent_dir: str = None):
    """The spec of an installed module, found without importing it or its parent package (None when absent), as
    the import system would find it (``sys.meta_path``): the preflight takes a second instead of the seconds that
    importing torch, mmcv and the codebase costs. ``parent_dir``: the folder of the package ``name`` is a
    submodule of."""
    try:
        if parent_dir is None:
            return importlib.util.find_spec(name)
        for finder in sys.meta_path:
            spec = finder.find_spec(name, [parent_dir]) if hasattr(finder, 'find_spec') else None
            if spec is not None:
                return spec
    except ImportError:
        pass
    return None


def package_dir(name: str):
    """The folder of an installed top-level package (None when absent)."""
    spec = find(name)
    return spec.submodule_search_locations[0] if spec and spec.submodule_search_locations else None


def missing_packages(codebase: str) -> list:
    """What of the full tier is not installed: mmcv's compiled ops ``mmcv._ext`` (absent with mmcv-lite) and the
    codebase."""
    missing = []
    mmcv_dir = package_dir('mmcv')
    if mmcv_dir is None or find('mmcv._ext', mmcv_dir) is None:
        missing.append('mmcv with its compiled ops (mmcv-lite has none)')
    if package_dir(codebase) is None:
        missing.append(codebase)
    return missing


def codebase_tool_path(codebase: str, tool: str) -> str:
    if codebase not in CODEBASES or tool not in TOOLS:
        sys.exit(f'usage: codebase_tool.py {{{",".join(CODEBASES)}}} {{{",".join(TOOLS)}}} ...; got {codebase} {tool}')
    missing = missing_packages(codebase)
    if missing:
        sys.exit(
            f'error: {codebase} {tool} needs {" and ".join(missing)}, which this environment lacks (the core tier of '
            '`make demo`); install the full tier with `make setup` (bash tools/setup_env.sh full)'
        )
    path = osp.join(package_dir(codebase), '.mim', 'tools', f'{tool}.py')
    if not osp.isfile(path):
        sys.exit(f'error: {codebase} has no {path}; install {codebase} from its wheel (make setup does)')
    return path


def check(tool: str, argv: list) -> None:
    """The launchers' preflight: the config loads and every data root and annotation file it reads exists."""
    import argparse
    import warnings

    warnings.simplefilter('ignore')  # the stack's deprecation notes would bury the one line this prints

    from mmengine.config import Config, DictAction

    parser = argparse.ArgumentParser(add_help=False)
    parser.add_argument('config')
    parser.add_argument('--cfg-options', nargs='+', action=DictAction)
    args, _ = parser.parse_known_args(argv)
    if not osp.isfile(args.config):
        sys.exit(f'error: config file {args.config!r} does not exist')
    # the ranks import what the config names; here its packages are only looked up, not imported (seconds each)
    cfg = Config.fromfile(args.config, import_custom_modules=False)
    if args.cfg_options:
        cfg.merge_from_dict(args.cfg_options)
    for module in (cfg.get('custom_imports') or {}).get('imports', []):
        package = module.split('.')[0]
        if find(package) is None:
            sys.exit(f'error: custom_imports: no module named {package!r} (config {args.config})')
    for loader in LOADERS[tool]:
        dataset = (cfg.get(loader) or {}).get('dataset') or {}
        root = dataset.get('data_root', '')
        if root and not osp.isdir(root):
            sys.exit(
                f'error: {loader}: data_root {root!r} does not exist. Put the data there or pass '
                f'--cfg-options {loader}.dataset.data_root=<path>'
            )
        ann_file = dataset.get('ann_file')
        if ann_file:
            path = ann_file if osp.isabs(ann_file) else osp.join(root, ann_file)
            if not osp.exists(path):
                sys.exit(f'error: {loader}: annotation file {path!r} does not exist (data_root {root!r})')


def main():
    if len(sys.argv) < 3:
        sys.exit(f'usage: {sys.argv[0]} {{{",".join(CODEBASES)}}} {{{",".join(TOOLS)}}} <tool arguments>')
    codebase, tool, argv = sys.argv[1], sys.argv[2], sys.argv[3:]
    path = codebase_tool_path(codebase, tool)
    if argv[:1] == ['--check']:
        check(tool, argv[1:])
        return
    launcher = argv[argv.index('--launcher') + 1] if '--launcher' in argv[:-1] else 'none'

    from mmmst.runtime.cpu_dist import CPU_WRAPPER, close_cpu_process_group, init_cpu_process_group

    on_cpu = init_cpu_process_group(launcher)
    if on_cpu:
        # argparse's DictAction merges a second --cfg-options into the first
        argv += ['--cfg-options', f'model_wrapper_cfg.type={CPU_WRAPPER}']
    sys.argv = [path] + argv
    runpy.run_path(path, run_name='__main__')
    if on_cpu:
        close_cpu_process_group()


if __name__ == '__main__':
    main()
