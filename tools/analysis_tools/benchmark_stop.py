"""Seconds from a stop signal to the end of a run started with ``tools/dist_train.sh`` (docs/preemption.md).

    python tools/analysis_tools/benchmark_stop.py <config> [--processes 2] [--signal SIGTERM] [--repeats 3]
        [--cfg-options key=value ...]

Starts the run as a shell or a container would (a process group of its own), waits for its first logged training
iterations, sends the signal to the launcher's process (what ``docker stop`` and Kubernetes do) and measures the time
until the launch exits; prints it beside the run's own iteration time and checkpoint write time, and the graces of
Docker (10 s), Kubernetes and torchrun (30 s) it must fit in.
"""

import argparse
import os
import os.path as osp
import re
import signal
import statistics
import subprocess
import sys
import tempfile
import time

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))


def one_stop(args, work_dir: str) -> dict:
    env = dict(os.environ, PYTHON=sys.executable, PORT=str(args.port))
    command = ['bash', osp.join(ROOT, 'tools/dist_train.sh'), args.config, str(args.processes), '--work-dir', work_dir]
    command += ['--cfg-options', 'default_hooks.logger.interval=1'] + (args.cfg_options or [])
    launcher = subprocess.Popen(
        command, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
        stdin=subprocess.DEVNULL, start_new_session=True,
    )  # fmt: skip
    lines, logged = [], 0
    for line in launcher.stdout:
        lines.append(line)
        logged += 'Epoch(train)' in line
        if logged >= args.after_iters:
            break
    else:
        sys.exit('error: the run ended before its first iterations:\n' + ''.join(lines[-30:]))
    sent = time.perf_counter()
    os.kill(launcher.pid, getattr(signal, args.signal))
    lines += launcher.stdout.readlines()
    launcher.wait()
    seconds = time.perf_counter() - sent
    text = ''.join(lines)
    iteration = [float(t) for t in re.findall(r'Epoch\(train\).*?\btime: ([0-9.]+)', text)]
    write = re.findall(r'wrote \S+ in ([0-9.]+) s', text)
    return dict(
        seconds=seconds,
        code=launcher.returncode,
        iteration=statistics.median(iteration) if iteration else float('nan'),
        write=float(write[-1]) if write else float('nan'),
    )


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('config')
    parser.add_argument('--processes', type=int, default=2)
    parser.add_argument('--signal', default='SIGTERM', choices=['SIGTERM', 'SIGUSR1'])
    parser.add_argument('--after-iters', type=int, default=3, help='logged iterations before the signal')
    parser.add_argument('--repeats', type=int, default=3)
    parser.add_argument('--port', type=int, default=29531)
    parser.add_argument('--cfg-options', nargs='+', help='as for tools/train.py')
    args = parser.parse_args(argv)
    if not osp.isfile(args.config):
        sys.exit(f'error: config file {args.config!r} does not exist')
    runs = []
    for repeat in range(args.repeats):
        with tempfile.TemporaryDirectory() as work_dir:
            runs.append(one_stop(args, work_dir))
        r = runs[-1]
        print(
            f'[{repeat + 1}/{args.repeats}] {args.signal} to the launcher -> exit {r["code"]} after '
            f'{r["seconds"]:.1f} s (iteration {r["iteration"]:.2f} s, checkpoint write {r["write"]:.2f} s)',
            flush=True,
        )
    median = statistics.median(r['seconds'] for r in runs)
    print(
        f'{osp.basename(args.config)}, {args.processes} processes: median {median:.1f} s from the signal to the exit '
        f'(Docker grace 10 s: {"fits" if median < 10 else "does not fit"}; Kubernetes and torchrun 30 s: '
        f'{"fits" if median < 30 else "does not fit"})'
    )
    if any(r['code'] != 75 for r in runs):
        sys.exit(f'error: exit codes {[r["code"] for r in runs]}, not all 75')


if __name__ == '__main__':
    main()
