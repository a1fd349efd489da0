"""The trainer's settings: the ``trainer:`` block of ``configs/train.yaml`` (registered by :mod:`nvs.config`)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass
class TrainerSettings:
    """The ``trainer:`` block of configs/train.yaml: these are the defaults, configs/trainer/*.yaml override them."""

    out: str  # run folder: checkpoints/, tb/, samples/, model/ (mandatory: trainer.out=runs/NAME)
    steps: int = 1000  # the schedule's length (cosine reaches 0 here)
    stop_at: int | None = None  # end the run (and export) at this step instead, schedule unchanged
    batch_size: int = 1  # global: split evenly over the processes (torchrun)
    lr: float = 1e-4
    weight_decay: float = 0.0
    betas: tuple[float, float] = (0.9, 0.999)
    warmup_steps: int = 100  # linear warm-up of the rate from 0
    schedule: str = "constant"  # or "cosine" (to 0 at ``steps``)
    grad_clip: float = 1.0
    ema_decay: float = 0.999
    precision: str = "auto"  # auto = bf16 autocast on CUDA, fp32 on CPU; or "bf16", "fp32"
    gradient_checkpointing: bool = False
    checkpoint_granularity: str = "layers"  # layers = diffusers' (ResNets, spatial transformers); blocks = whole blocks
    freeze_spatial: bool = False  # true = train only the U-Net's temporal layers (+ conv_in), as IM-3D
    parallel: str = "ddp"  # or "fsdp" (shards the U-Net's blocks)
    find_unused_parameters: bool = False  # DDP: true when some trained parameter gets no gradient
    device: str = "auto"
    checkpoint_every: int = 500  # 0 = never (checkpoint, log and sample intervals are in steps)
    keep_checkpoints: int = 2
    log_every: int = 10
    sample_every: int = 500
    sample_steps: int = 10  # the preview's sampler steps
    sample_guidance: float = 3.5  # the preview's constant guidance
    resume: str | None = "auto"  # auto = latest checkpoint in out/checkpoints, a folder, or null
    time_limit_minutes: float | None = None  # checkpoint and stop after this long (bounded runs); rerun to resume
    export: bool = True  # save the EMA weights to out/model at the end
    export_dtype: str = "float32"  # or "float16" (half the size, e.g. for a model shipped in a repository)
    progress: bool = True
    tensorboard: bool = True  # false where the tensorboard package is not installed
    export_at_time_limit: bool = False  # also export out/model when the time limit ends a run (a stretch's EMA)
    device_data: bool = True  # in-memory scenes (and their targets' VAE latents) kept on the training device
    compile: bool | None = None  # torch.compile the U-Net; null = on CUDA only
    cuda_graph: bool = False  # replay each step from a CUDA graph per input-view count (one CUDA process)

    def __post_init__(self) -> None:
        self.betas = tuple(float(b) for b in self.betas)
        if self.steps < 1 or self.batch_size < 1:
            raise ValueError(f"trainer.steps and trainer.batch_size must be >= 1, got {self.steps}, {self.batch_size}")
        if self.stop_at is not None and not 1 <= self.stop_at <= self.steps:
            raise ValueError(f"trainer.stop_at must be in 1..trainer.steps={self.steps} or null, got {self.stop_at}")
        if self.schedule not in ("constant", "cosine"):
            raise ValueError(f"trainer.schedule must be constant or cosine, got {self.schedule!r}")
        if self.checkpoint_granularity not in ("layers", "blocks"):
            raise ValueError(
                f"trainer.checkpoint_granularity must be layers or blocks, got {self.checkpoint_granularity!r}"
            )
        if self.precision not in ("auto", "bf16", "fp32"):
            raise ValueError(f"trainer.precision must be auto, bf16 or fp32, got {self.precision!r}")
        if self.export_dtype not in ("float32", "float16", "bfloat16"):
            raise ValueError(f"trainer.export_dtype must be float32, float16 or bfloat16, got {self.export_dtype!r}")
        for name in ("checkpoint_every", "log_every", "sample_every"):
            if getattr(self, name) < 0:
                raise ValueError(f"trainer.{name} must be >= 0 (0 = never), got {getattr(self, name)}")
