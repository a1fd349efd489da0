#!/usr/bin/env bash
# How models/default was made, on one GPU (an H200 here):
#   benchmarks/train_default_model.sh RUN_DIR
# Stage 1 trains the VAE (150 s); stage 2 the U-Net + PixelNeRF conditioner. Stage 2 stops itself
# after trainer.time_limit_minutes with a checkpoint and resumes when run again, so it can run as
# a series of jobs of at most 10 minutes; this script loops until the model is exported, then
# copies the float16 EMA model to models/default. configs/experiment/demo.yaml holds every setting.
set -euo pipefail
RUN=${1:?usage: benchmarks/train_default_model.sh RUN_DIR}
NVS=${NVS:-nvs}
cd "$(dirname "$0")/.."
[ -f "$RUN/vae/config.json" ] || $NVS train-vae +experiment=demo autoencoder.out="$RUN"
until [ -f "$RUN/model/pathnvs.json" ]; do
    $NVS train +experiment=demo trainer.out="$RUN" vae="$RUN/vae" data.num_scenes=150
done
rm -rf models/default && cp -r "$RUN/model" models/default
