#!/usr/bin/env bash
# Set up (or check) the mmmst environment: a .venv with the pinned OpenMMLab stack (docs/get_started.md).
#
#   bash tools/setup_env.sh core   # `make demo`: torch, mmengine, mmcv-lite (pure Python), mmpretrain, mmmst
#   bash tools/setup_env.sh        # `make setup` / `make test`: the core tier plus mmcv with its compiled ops
#                                  # (built from source once, ~11 min on 2 cores, then cached), mmdet, mmseg,
#                                  # openmim and the test tools
#
# Idempotent: a finished tier leaves a stamp (`.venv/.mmmst-setup-done`: the tier and a hash of what defines it),
# so a repeat returns at once; the full tier satisfies a request for the core tier, and a request for the full tier
# on a core environment replaces mmcv-lite by mmcv (never both installed).
#
# Environment knobs:
#   MMMST_VENV=path          where the virtual environment lives (default: <repo>/.venv)
#   MMMST_CACHE=path         where the built mmcv wheel is cached (default: ~/.cache/mmmst)
#   MMMST_SYSTEM_SITE=1      create the venv with --system-site-packages, so that a torch / mmcv
#                            already installed on a GPU cluster is reused instead of reinstalled
#   MMMST_SETUP_FORCE=1      re-check every step even when the stamp says the tier is complete
#   PYTHON=python3.11        the interpreter that creates the venv
#
# mmcv: an importable mmcv 2.1.0 with `mmcv.ops` is kept as it is. Otherwise a wheel is built from the sdist with
# C++20 (torch >= 2.6 headers need it) and cached per (torch version, CUDA/CPU); with a visible GPU and a CUDA
# toolkit (nvcc), the build includes the CUDA ops (FORCE_CUDA=1).
set -euo pipefail

TIER=${1:-full}
case "$TIER" in
  core | full) ;;
  *) echo "usage: bash tools/setup_env.sh [core|full] (got '$TIER')" >&2; exit 2 ;;
esac

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
VENV=${MMMST_VENV:-$ROOT/.venv}
CACHE=${MMMST_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/mmmst}
PYTHON=${PYTHON:-python3}
TORCH_PIN="torch==2.14.1 torchvision==0.29.1"
MMCV_VERSION=2.1.0
MMCV_BUILD_MINUTES=11  # measured on 2 idle cores; shown beside the build's progress

STEP="start"
STEP_T0=$SECONDS
T0=$SECONDS
export PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_NO_INPUT=1

step() {
  STEP="$1"
  STEP_T0=$SECONDS
  echo "[setup +$((SECONDS - T0))s] $STEP ..."
}
done_step() { echo "[setup +$((SECONDS - T0))s] $STEP: done in $((SECONDS - STEP_T0)) s"; }
on_error() {
  echo "[setup] FAILED at step '$STEP' (after $((SECONDS - STEP_T0)) s). Fix the error above and rerun" \
       "'bash tools/setup_env.sh $TIER'; finished steps are skipped." >&2
}
trap on_error ERR

PY="$VENV/bin/python"
# pip's own warnings about index locations configured on this machine but absent are noise to a user.
pip_install() {
  "$PY" -m pip install --quiet "$@" 2> >(grep -v "^WARNING: Location '.*' is ignored" >&2)
}

# Fast path: a finished set-up leaves a stamp holding its tier and the hash of everything that defines it.
STAMP="$VENV/.mmmst-setup-done"
DEFINITION=$(cat "$ROOT/tools/setup_env.sh" "$ROOT/setup.py" "$ROOT"/requirements/*.txt | sha256sum | cut -d' ' -f1)
if [ "${MMMST_SETUP_FORCE:-0}" != "1" ] && [ -x "$PY" ] && [ -f "$STAMP" ]; then
  read -r DONE_TIER DONE_DEFINITION < "$STAMP" || true
  if [ "$DONE_DEFINITION" = "$DEFINITION" ] && { [ "$DONE_TIER" = full ] || [ "$TIER" = core ]; }; then
    echo "[setup] environment up to date: $DONE_TIER tier in $VENV (MMMST_SETUP_FORCE=1 re-checks every step)"
    exit 0
  fi
fi
echo "[setup] setting up the $TIER tier in $VENV"

step "virtual environment"
if [ ! -x "$PY" ]; then
  args=()
  [ "${MMMST_SYSTEM_SITE:-0}" = "1" ] && args+=(--system-site-packages)
  "$PYTHON" -m venv "${args[@]}" "$VENV"
fi
done_step

step "build tools (setuptools 80.9.0: >= 77 for torch, < 81 keeps pkg_resources for mmcv/mmengine)"
if ! $PY -c "import setuptools, sys; sys.exit(setuptools.__version__ != '80.9.0')" 2>/dev/null \
   || ! $PY -c "import wheel" 2>/dev/null; then
  pip_install "setuptools==80.9.0" wheel
fi
done_step

step "torch + torchvision"
if $PY -c "import torch, torchvision" 2>/dev/null; then
  echo "[setup] keeping torch $($PY -c 'import torch; print(torch.__version__)')"
else
  pip_install $TORCH_PIN
fi
TORCH_VERSION=$($PY -c "import torch; print(torch.__version__.split('+')[0])")
done_step

# Pin what is installed now so that no later step swaps torch or setuptools underneath.
CONSTRAINTS="$VENV/mmmst-constraints.txt"
{
  # the installed distributions' versions (torch.__version__ may carry a local label, +cu130, that the
  # distribution's own version lacks, and pip would then look for a torch that no index has)
  echo "torch==$($PY -c 'import importlib.metadata as m; print(m.version("torch"))')"
  echo "torchvision==$($PY -c 'import importlib.metadata as m; print(m.version("torchvision"))')"
  echo "setuptools==80.9.0"
  echo "mmcv==$MMCV_VERSION"
  echo "mmcv-lite==$MMCV_VERSION"
  cat "$ROOT/requirements/constraints.txt"
} > "$CONSTRAINTS"

step "mmengine, mmpretrain + runtime requirements"
if ! $PY -c "import mmengine, mmpretrain, timm; assert mmengine.__version__ == '0.10.7'" 2>/dev/null; then
  pip_install -c "$CONSTRAINTS" -r "$ROOT/requirements/runtime.txt"
fi
done_step

# `pip show` tells which distribution owns the importable `mmcv/`: mmcv (with ops) or mmcv-lite (pure Python).
mmcv_dist() {
  if $PY -m pip show --quiet mmcv >/dev/null 2>&1; then echo mmcv
  elif $PY -m pip show --quiet mmcv-lite >/dev/null 2>&1; then echo mmcv-lite
  else echo none; fi
}

build_mmcv_wheel() {  # $1: the folder the wheel goes to
  local wheel_dir=$1 cuda_tag=$2 build force_cuda=0 log pid done_files total
  build=$(mktemp -d)
  log="$build/build.log"
  echo "[setup] no cached wheel in $wheel_dir: building mmcv from source ($cuda_tag," \
       "about $MMCV_BUILD_MINUTES min on 2 cores; full log: $log)"
  pip_install ninja
  $PY -m pip download --quiet --no-deps --no-binary :all: "mmcv==$MMCV_VERSION" -d "$build" \
    2> >(grep -v "^WARNING: Location '.*' is ignored" >&2)
  tar -xzf "$build"/mmcv-$MMCV_VERSION.tar.gz -C "$build"
  # torch >= 2.6 headers use C++20 features; mmcv 2.1.0 asks for c++14 / c++17.
  sed -i -E 's/-std=c\+\+1[47]/-std=c++20/g' "$build/mmcv-$MMCV_VERSION/setup.py"
  [ "$cuda_tag" != cpu ] && force_cuda=1
  (cd "$build/mmcv-$MMCV_VERSION" && MMCV_WITH_OPS=1 FORCE_CUDA=$force_cuda MAX_JOBS=${MAX_JOBS:-$(nproc)} \
    $PY -m pip wheel -v --no-build-isolation --no-deps . -w "$wheel_dir" > "$log" 2>&1) &
  pid=$!
  # Progress every 30 s: ninja prints `[done/total]` per compiled file.
  while kill -0 "$pid" 2>/dev/null; do
    for _ in $(seq 30); do kill -0 "$pid" 2>/dev/null || break; sleep 1; done
    kill -0 "$pid" 2>/dev/null || break
    done_files=$(grep -oE '^\s*\[[0-9]+/[0-9]+\]' "$log" | tail -1 | tr -d '[] ' || true)
    echo "[setup +$((SECONDS - T0))s] building mmcv: ${done_files:+$done_files files compiled, }$(( (SECONDS - STEP_T0) / 60 ))" \
         "min of about $MMCV_BUILD_MINUTES"
  done
  if ! wait "$pid"; then
    tail -30 "$log" >&2
    echo "[setup] the mmcv build failed; the full log is $log" >&2
    return 1
  fi
  rm -rf "$build"
}

if [ "$TIER" = core ]; then
  step "mmcv $MMCV_VERSION (mmcv-lite: no compiled ops, none needed for pretraining and evaluation)"
  if $PY -c "import mmcv; assert mmcv.__version__ == '$MMCV_VERSION'" 2>/dev/null; then
    echo "[setup] keeping the installed $(mmcv_dist) $MMCV_VERSION"
  else
    pip_install -c "$CONSTRAINTS" "mmcv-lite==$MMCV_VERSION"
  fi
  done_step
else
  step "mmcv $MMCV_VERSION with ops"
  if $PY -c "import mmcv, mmcv.ops; assert mmcv.__version__ == '$MMCV_VERSION'" 2>/dev/null; then
    echo "[setup] keeping the installed mmcv $MMCV_VERSION"
  else
    CUDA_TAG=cpu
    if command -v nvcc >/dev/null && $PY -c "import torch, sys; sys.exit(not torch.cuda.is_available())"; then
      CUDA_TAG="cu$($PY -c 'import torch; print(torch.version.cuda)' | tr -d .)"
    fi
    WHEEL_DIR="$CACHE/wheels/torch$TORCH_VERSION-$CUDA_TAG"
    mkdir -p "$WHEEL_DIR"
    if ls "$WHEEL_DIR"/mmcv-$MMCV_VERSION-*.whl >/dev/null 2>&1; then
      echo "[setup] using the cached wheel in $WHEEL_DIR"
    else
      build_mmcv_wheel "$WHEEL_DIR" "$CUDA_TAG"
    fi
    # mmcv-lite and mmcv both own `mmcv/`: remove the one before installing the other.
    if [ "$(mmcv_dist)" = mmcv-lite ]; then
      echo "[setup] replacing mmcv-lite by mmcv with ops"
      $PY -m pip uninstall --quiet --yes mmcv-lite
    fi
    pip_install -c "$CONSTRAINTS" "$WHEEL_DIR"/mmcv-$MMCV_VERSION-*.whl
  fi
  done_step

  step "mmdet, mmsegmentation"
  if ! $PY -c "import mmdet, mmseg" 2>/dev/null; then
    pip_install -c "$CONSTRAINTS" -r "$ROOT/requirements/downstream.txt"
  fi
  done_step

  step "test tools"
  if ! $PY -c "import pytest, ruff, xdist" 2>/dev/null; then
    pip_install -c "$CONSTRAINTS" -r "$ROOT/requirements/tests.txt"
  fi
  done_step

  step "openmim (mim train / mim test mmmst ...)"
  # openmim's dependency opendatalab pulls openxlab, which pins setuptools 60 (it would break torch and mmcv); mim
  # itself runs without it, so openmim goes in without dependencies and its other dependencies by name.
  if ! $PY -c "import mim" 2>/dev/null; then
    pip_install -c "$CONSTRAINTS" Click colorama model-index pandas requests rich tabulate
    pip_install -c "$CONSTRAINTS" --no-deps openmim==0.3.9
  fi
  done_step
fi

step "mmmst (development install)"
# The repository on the path (a .pth file) and its metadata beside the package (mmmst.egg-info, configs/ and tools/
# linked into mmmst/.mim), as `setup.py develop` made it before setuptools 80: imports follow the working tree, and
# `mim train mmmst <config>` finds <repo>/mmmst/.mim (a PEP 660 editable install has no package folder for mim).
SITE=$($PY -c "import sysconfig; print(sysconfig.get_paths()['purelib'])")
if [ ! -f "$SITE/mmmst-develop.pth" ] || [ ! -d "$ROOT/mmmst.egg-info" ] || [ ! -e "$ROOT/mmmst/.mim/tools" ] \
   || [ "$ROOT/setup.py" -nt "$VENV/.mmmst-installed" ]; then
  "$PY" -m pip uninstall -y -q mmmst >/dev/null 2>&1 || true  # the editable install of an earlier set-up
  (cd "$ROOT" && "$PY" -W ignore setup.py -q egg_info >/dev/null)
  echo "$ROOT" > "$SITE/mmmst-develop.pth"
  touch "$VENV/.mmmst-installed"
fi
done_step

step "import check"
if [ "$TIER" = core ]; then
  # `import mmmst` must be silent on the core tier (no mmcv-lite warning about missing ops).
  out=$($PY -c "import mmmst, mmpretrain.models" 2>&1)
  if [ -n "$out" ]; then echo "$out" >&2; echo "[setup] 'import mmmst' printed the above" >&2; false; fi
else
  $PY -W ignore -c "import mmmst, mmcv.ops, mmdet.models, mmseg.models, mmpretrain.models"
fi
done_step

echo "$TIER $DEFINITION" > "$STAMP"
echo "[setup] $TIER tier ready in $((SECONDS - T0)) s: $VENV"
