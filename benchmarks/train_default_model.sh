#!/usr/bin/env bash
# How models/default was made, on one GPU (an H200 here):
#   benchmarks/train_default_model.sh RUN_DIR
# Stage 1 trains the VAE (150 s); stage 2 the U-Net + PixelNeRF conditioner (1417 steps); stage 3
# trains stage 2's export on (1528 steps, all 200 scenes, fresh optimizer); stage 4 trains stage 3's
# export on with the CUDA-graph trainer (14,200 steps, a cosine to 0; one CUDA GPU); stage 5 trains
# stage 4's export on with the same recipe for 12,855 steps (30,000 U-Net steps in all). Stages 2 to 5
# stop themselves after trainer.time_limit_minutes with a checkpoint and resume when run again, so
# they can run as a series of jobs of at most 10 minutes; this script loops until each is exported,
# then copies the float16 EMA model to models/default. configs/experiment/demo.yaml,
# demo_stage3.yaml, demo_stage4.yaml and demo_stage5.yaml hold every setting.
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
# here every run resumes the last one's checkpoint, so stages 4 and 5 export only at their last step
until [ -f "$RUN/stage4/model/pathnvs.json" ]; do
    $NVS train +experiment=demo_stage4 stage3_model="$RUN/stage3/model" trainer.out="$RUN/stage4" \
        trainer.cuda_graph=true trainer.compile=false trainer.export_at_time_limit=false
done
until [ -f "$RUN/stage5/model/pathnvs.json" ]; do
    $NVS train +experiment=demo_stage5 stage4_model="$RUN/stage4/model" trainer.out="$RUN/stage5" \
        trainer.cuda_graph=true trainer.compile=false trainer.export_at_time_limit=false
done
rm -rf models/default && cp -r "$RUN/stage5/model" models/default
