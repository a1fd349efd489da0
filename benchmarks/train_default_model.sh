#!/usr/bin/env bash
# How models/default was made, on one GPU (an H200 here):
#   benchmarks/train_default_model.sh RUN_DIR
# Stage 1 trains the VAE (150 s); stage 2 the U-Net + PixelNeRF conditioner (1417 steps); stage 3
# trains stage 2's export on (1528 steps, all 200 scenes, fresh optimizer); stage 4 trains stage 3's
# export on with the CUDA-graph trainer (14,200 steps, a cosine to 0; one CUDA GPU). Stages 2 to 4
# stop themselves after trainer.time_limit_minutes with a checkpoint and resume when run again, so
# they can run as a series of jobs of at most 10 minutes; this script loops until each is exported,
# then copies the float16 EMA model to models/default. configs/experiment/demo.yaml,
# demo_stage3.yaml and demo_stage4.yaml hold every setting.
set -euo pipefail
RUN=${1:?usage: benchmarks/train_default_model.sh RUN_DIR}
NVS=${NVS:-nvs}
cd "$(dirname "$0")/.."
[ -f "$RUN/vae/config.json" ] || $NVS train-vae +experiment=demo autoencoder.out="$RUN"
until [ -f "$RUN/model/pathnvs.json" ]; do
    $NVS train +experiment=demo trainer.out="$RUN" vae="$RUN/vae" data.num_scenes=150
done
until [ -f "$RUN/stage3/model/pathnvs.json" ]; do
    $NVS train +experiment=demo_stage3 stage2_model="$RUN/model" trainer.out="$RUN/stage3"
done
# here every run resumes the last one's checkpoint, so stage 4 exports only at its last step
until [ -f "$RUN/stage4/model/pathnvs.json" ]; do
    $NVS train +experiment=demo_stage4 stage3_model="$RUN/stage3/model" trainer.out="$RUN/stage4" \
        trainer.cuda_graph=true trainer.compile=false trainer.export_at_time_limit=false
done
rm -rf models/default && cp -r "$RUN/stage4/model" models/default
