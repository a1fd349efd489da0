#!/usr/bin/env bash
# Creates .venv in this folder, installs pathnvs and its dependencies, then runs the main job.
#   ./setup.sh            set up, then run the main job on the built-in synthetic world
#   ./setup.sh --no-run   set up only
# On a machine without an NVIDIA driver it installs the CPU build of torch 2.13.0 and never
# pulls CUDA packages; torchvision (needed only by lpips' VGG definition) is installed without
# its dependencies, and camera/_torchvision.py makes its import work on the CPU build.
set -euo pipefail
cd "$(dirname "$0")"
PY=${PYTHON:-python3}
[ -x .venv/bin/python ] || "$PY" -m venv .venv
VPY=.venv/bin/python
PIP="$VPY -m pip install -q --disable-pip-version-check"
if command -v nvidia-smi >/dev/null 2>&1 && nvidia-smi >/dev/null 2>&1; then
    echo "[setup] NVIDIA GPU found: installing the CUDA build of torch"
    $PIP torch torchvision
else
    echo "[setup] no GPU: installing the CPU build of torch 2.13.0"
    $PIP torch==2.13.0
    $PIP --no-deps torchvision==0.28.0
fi
TORCH_VERSION=$($VPY -c "import torch; print(torch.__version__.split('+')[0])")
echo "torch==$TORCH_VERSION" > .venv/constraints.txt
$PIP -c .venv/constraints.txt -e ".[test,mesh,dev]"
echo "[setup] done: $($VPY -c 'import torch; print("torch", torch.__version__)')"
if [ "${1:-}" != "--no-run" ]; then
    # The main job: the shipped model (models/default) on a held-out synthetic scene: 2 input
    # views -> frames along a path, baselines, 3D Gaussians, scores (outputs/demo).
    OMP_WAIT_POLICY=PASSIVE .venv/bin/nvs demo --out outputs/demo
    echo "[setup] main job done: see outputs/demo (contact_sheet.png, video.mp4, summary.md)"
fi
