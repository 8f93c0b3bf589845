#!/usr/bin/env bash
# Set up (or check) the mmmst environment: a .venv with the pinned OpenMMLab stack (README, docs/design.md §3).
#
#   bash tools/setup_env.sh            # idempotent; the first run builds mmcv (~11 min on 2 cores)
#
# Environment knobs:
#   MMMST_VENV=path          where the virtual environment lives (default: <repo>/.venv)
#   MMMST_CACHE=path         where the built mmcv wheel is cached (default: ~/.cache/mmmst)
#   MMMST_SYSTEM_SITE=1      create the venv with --system-site-packages, so that a torch / mmcv
#                            already installed on a GPU cluster is reused instead of reinstalled
#   PYTHON=python3.11        the interpreter that creates the venv
#
# mmcv: an importable mmcv 2.1.0 with `mmcv.ops` is kept as it is. Otherwise a wheel is built from
# the sdist with C++20 (torch >= 2.6 headers need it) and cached per (torch version, CUDA/CPU); with a
# visible GPU and a CUDA toolkit (nvcc), the build includes the CUDA ops (FORCE_CUDA=1).
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
VENV=${MMMST_VENV:-$ROOT/.venv}
CACHE=${MMMST_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/mmmst}
PYTHON=${PYTHON:-python3}
TORCH_PIN="torch==2.14.1 torchvision==0.29.1"
MMCV_VERSION=2.1.0

STEP="start"
STEP_T0=$SECONDS
T0=$SECONDS
export PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_NO_INPUT=1

step() {
  STEP="$1"
  STEP_T0=$SECONDS
  echo "[setup] $STEP ..."
}
done_step() { echo "[setup] $STEP: done in $((SECONDS - STEP_T0)) s"; }
on_error() {
  echo "[setup] FAILED at step '$STEP' (after $((SECONDS - STEP_T0)) s). Fix the error above and rerun" \
       "'bash tools/setup_env.sh'; finished steps are skipped." >&2
}
trap on_error ERR

PY="$VENV/bin/python"
PIP="$PY -m pip install --quiet"

# Fast path: a finished set-up leaves a stamp holding the hash of everything that defines it.
STAMP="$VENV/.mmmst-setup-done"
DEFINITION=$(cat "$ROOT/tools/setup_env.sh" "$ROOT/setup.py" "$ROOT"/requirements/*.txt | sha256sum | cut -d' ' -f1)
if [ "${MMMST_SETUP_FORCE:-0}" != "1" ] && [ -x "$PY" ] && [ -f "$STAMP" ] && [ "$(cat "$STAMP")" = "$DEFINITION" ]; then
  echo "[setup] environment up to date ($VENV; MMMST_SETUP_FORCE=1 re-checks every step)"
  exit 0
fi

step "virtual environment ($VENV)"
if [ ! -x "$PY" ]; then
  args=()
  [ "${MMMST_SYSTEM_SITE:-0}" = "1" ] && args+=(--system-site-packages)
  "$PYTHON" -m venv "${args[@]}" "$VENV"
fi
done_step

step "build tools (setuptools 80.9.0: >= 77 for torch, < 81 keeps pkg_resources for mmcv/mmengine)"
if ! $PY -c "import setuptools, sys; sys.exit(setuptools.__version__ != '80.9.0')" 2>/dev/null \
   || ! $PY -c "import wheel, ninja" 2>/dev/null; then
  $PIP "setuptools==80.9.0" wheel ninja
fi
done_step

step "torch + torchvision"
if $PY -c "import torch, torchvision" 2>/dev/null; then
  echo "[setup] keeping torch $($PY -c 'import torch; print(torch.__version__)')"
else
  $PIP $TORCH_PIN
fi
TORCH_VERSION=$($PY -c "import torch; print(torch.__version__.split('+')[0])")
done_step

# Pin what is installed now so that no later step swaps torch, setuptools or mmcv underneath.
CONSTRAINTS="$VENV/mmmst-constraints.txt"
{
  echo "torch==$($PY -c 'import torch; print(torch.__version__)')"
  echo "torchvision==$($PY -c 'import torchvision; print(torchvision.__version__)')"
  echo "setuptools==80.9.0"
  echo "mmcv==$MMCV_VERSION"
  cat "$ROOT/requirements/constraints.txt"
} > "$CONSTRAINTS"
PIPC="$PIP -c $CONSTRAINTS"

step "mmengine + runtime requirements"
if ! $PY -c "import mmengine; assert mmengine.__version__ == '0.10.7'" 2>/dev/null; then
  $PIPC -r "$ROOT/requirements/runtime.txt"
fi
done_step

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
  if ! ls "$WHEEL_DIR"/mmcv-$MMCV_VERSION-*.whl >/dev/null 2>&1; then
    echo "[setup] no cached wheel in $WHEEL_DIR: building mmcv from source ($CUDA_TAG, about 11 min on 2 cores)"
    BUILD=$(mktemp -d)
    $PY -m pip download --quiet --no-deps --no-binary :all: "mmcv==$MMCV_VERSION" -d "$BUILD"
    tar -xzf "$BUILD"/mmcv-$MMCV_VERSION.tar.gz -C "$BUILD"
    # torch >= 2.6 headers use C++20 features; mmcv 2.1.0 asks for c++14 / c++17.
    sed -i -E 's/-std=c\+\+1[47]/-std=c++20/g' "$BUILD/mmcv-$MMCV_VERSION/setup.py"
    FORCE_CUDA=0
    [ "$CUDA_TAG" != cpu ] && FORCE_CUDA=1
    (cd "$BUILD/mmcv-$MMCV_VERSION" && MMCV_WITH_OPS=1 FORCE_CUDA=$FORCE_CUDA MAX_JOBS=${MAX_JOBS:-$(nproc)} \
      $PY -m pip wheel --quiet --no-build-isolation --no-deps . -w "$WHEEL_DIR")
    rm -rf "$BUILD"
  else
    echo "[setup] using the cached wheel in $WHEEL_DIR"
  fi
  $PIPC "$WHEEL_DIR"/mmcv-$MMCV_VERSION-*.whl
fi
done_step

step "mmpretrain, mmdet, mmsegmentation"
if ! $PY -c "import mmpretrain, mmdet, mmseg" 2>/dev/null; then
  $PIPC -r "$ROOT/requirements/openmmlab.txt"
fi
done_step

step "mmmst (editable) + test tools"
if ! $PY -c "import mmmst, pytest, ruff" 2>/dev/null \
   || [ "$ROOT/setup.py" -nt "$VENV/.mmmst-installed" ]; then
  $PIPC -r "$ROOT/requirements/tests.txt"
  $PIPC --no-deps --no-build-isolation -e "$ROOT"
  touch "$VENV/.mmmst-installed"
fi
done_step

step "openmim (mim train / mim test mmmst ...)"
# openmim's dependency opendatalab pulls openxlab, which pins setuptools 60 (it would break torch and mmcv); mim
# itself runs without it, so openmim goes in without dependencies and its other dependencies by name.
if ! $PY -c "import mim" 2>/dev/null; then
  $PIPC Click colorama model-index pandas requests rich tabulate
  $PIPC --no-deps openmim==0.3.9
fi
done_step

step "import check"
$PY -W ignore -c "import mmmst, mmcv.ops, mmdet.models, mmseg.models, mmpretrain.models"
done_step

echo "$DEFINITION" > "$STAMP"

echo "[setup] environment ready in $((SECONDS - T0)) s: $VENV"
