#!/usr/bin/env bash
# Creates .venv in this folder, installs pathnvs and its dependencies, then runs the main job.
#   ./setup.sh            set up, then run the main job on the built-in synthetic world
#   ./setup.sh --no-run   set up only
# On a machine without an NVIDIA driver it installs the CPU build of torch 2.13.0 and never
# pulls CUDA packages; torchvision (needed only by lpips' VGG definition) is installed without
# its dependencies, and nvs/_torchvision.py makes its import work on the CPU build.
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
$PIP -c .venv/constraints.txt -e ".[test,mesh]"
echo "[setup] done: $($VPY -c 'import torch; print("torch", torch.__version__)')"
if [ "${1:-}" != "--no-run" ]; then
    # The main job until a trained model ships: a small synthetic world in the CO3D v2 layout
    # (with a contact sheet per sequence), its SparseFusion manifest, and V3D's object orbit.
    mkdir -p outputs
    .venv/bin/nvs data synth --out outputs/world --categories 2 --sequences 1 --frames 16 --size 128 --overwrite
    .venv/bin/nvs data manifest outputs/world --protocol sparsefusion --out outputs/manifest.json
    .venv/bin/nvs path orbit --frames 18 --radius 2 --elevation 0 --fov 60 \
        --out outputs/orbit.json --plot outputs/orbit.png
    echo "[setup] main job done: see outputs/ (world/contact_sheets, manifest.json, orbit.png)"
fi
