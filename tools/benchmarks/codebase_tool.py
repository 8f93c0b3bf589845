"""Run mmdet's or mmseg's own tools/train.py or tools/test.py (shipped in their wheels under .mim/tools).

    python tools/benchmarks/codebase_tool.py {mmdet,mmseg} {train,test} <that tool's arguments>

Called by tools/benchmarks/<codebase>/dist_{train,test}.sh through tools/dist_launch.sh
(``torch.distributed.run``). With ``--launcher pytorch`` on a machine without a GPU it starts a gloo process group
and selects mmmst's CPU model wrapper first (mmengine's launcher assumes CUDA), so the same command checks a
config and a data layout on a laptop before GPUs are booked.
"""

import os.path as osp
import runpy
import sys

CODEBASES = ('mmdet', 'mmseg')
TOOLS = ('train', 'test')


def codebase_tool_path(codebase: str, tool: str) -> str:
    if codebase not in CODEBASES or tool not in TOOLS:
        sys.exit(f'usage: codebase_tool.py {{{",".join(CODEBASES)}}} {{{",".join(TOOLS)}}} ...; got {codebase} {tool}')
    module = __import__(codebase)
    path = osp.join(osp.dirname(module.__file__), '.mim', 'tools', f'{tool}.py')
    if not osp.isfile(path):
        sys.exit(f'{codebase} has no {path}; install {codebase} from its wheel (tools/setup_env.sh does)')
    return path


def main():
    if len(sys.argv) < 3:
        sys.exit(f'usage: {sys.argv[0]} {{{",".join(CODEBASES)}}} {{{",".join(TOOLS)}}} <tool arguments>')
    path = codebase_tool_path(sys.argv[1], sys.argv[2])
    argv = sys.argv[3:]
    launcher = argv[argv.index('--launcher') + 1] if '--launcher' in argv[:-1] else 'none'

    from mmmst.engine.cpu_dist import CPU_WRAPPER, close_cpu_process_group, init_cpu_process_group

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
