"""The training loop: AdamW + warm-up, grad clipping, EMA, bf16 on CUDA, checkpoints, exact resume.

Trained: the U-Net (all of it, or only its temporal layers with ``freeze_spatial``, as IM-3D)
and the conditioner; the VAE and the CLIP encoder are frozen and in eval mode.

Output folder ``out``::

    checkpoints/step_XXXXXXX/   trainable.safetensors  (U-Net + conditioner weights, "unet."/"conditioner.")
                                ema.safetensors        (EMA of the trained parameters)
                                training_state.pt      (optimizer, scheduler, RNG, step, data position;
                                                        read with torch.load(weights_only=True))
    tb/                         tensorboard events (loss terms, lr, grad norm)
    samples/step_XXXXXXX.png    inputs / targets / samples of a fixed preview clip
    model/                      the EMA model, PathNVSModel.save_pretrained (in ``export_dtype``)
    log.jsonl                   the logged terms, one line per ``log_every`` steps (cut back on resume)
    training_curve.png          those terms plotted, rewritten at every checkpoint

Checkpoint folders are written into a temporary sibling and renamed. Resuming restores every
piece, and the clip sampler and the noise draws are functions of (seed, step, sample index),
so a resumed run repeats the losses of an uninterrupted one exactly (bitwise on CPU).
"""

from __future__ import annotations

import copy
import math
import os
import random
import re
import shutil
import time
from contextlib import nullcontext
from pathlib import Path

import numpy as np
import torch
from torch import Tensor, nn

from nvs.data.clips import ClipSampler, SceneSet, TrainBatch, load_batch
from nvs.train import distributed as D
from nvs.train.loss import EDMObjective
from nvs.train.settings import TrainerSettings

CHECKPOINT = re.compile(r"^step_(\d{7})$")
TEMPORAL_PARAMETER = re.compile(r"(^|\.)(temporal_transformer_blocks|temporal_res_block|time_mixer|time_pos_embed)\.")


# ----------------------------------------------------------------------------- pieces
def set_trainable(model: nn.Module, freeze_spatial: bool = False) -> list[str]:
    """Freeze the VAE and CLIP (and put them in eval); train the conditioner and the U-Net, or with
    ``freeze_spatial`` only the U-Net's temporal layers plus ``conv_in`` (its new, zero-initialised
    conditioning channels must learn). Returns the trained parameter names."""
    for part in (model.vae, model.image_encoder):
        part.requires_grad_(False)
        part.eval()
    model.conditioner.requires_grad_(True)
    for name, p in model.unet.named_parameters():
        p.requires_grad_(not freeze_spatial or bool(TEMPORAL_PARAMETER.search(name)) or name.startswith("conv_in."))
    return [n for n, p in model.named_parameters() if p.requires_grad]


def lr_factor(step: int, warmup_steps: int, total_steps: int, schedule: str) -> float:
    """Linear warm-up to 1 over ``warmup_steps``, then constant or cosine down to 0 at ``total_steps``."""
    if step < warmup_steps:
        return (step + 1) / warmup_steps
    if schedule == "constant":
        return 1.0
    progress = (step - warmup_steps) / max(1, total_steps - warmup_steps)
    return 0.5 * (1.0 + math.cos(math.pi * min(1.0, progress)))


class EMA:
    """Exponential moving average of named parameters: ema ← d·ema + (1 − d)·p."""

    def __init__(self, named: dict[str, Tensor], decay: float) -> None:
        if not 0.0 <= decay < 1.0:
            raise ValueError(f"EMA decay must be in [0, 1), got {decay}")
        self.decay = decay
        self.shadow = {n: p.detach().clone() for n, p in named.items()}

    @torch.no_grad()
    def update(self, named: dict[str, Tensor]) -> None:
        for n, p in named.items():
            self.shadow[n].lerp_(p.detach(), 1.0 - self.decay)


def rng_state() -> dict:
    np_state = np.random.get_state()
    return {
        "torch": torch.get_rng_state(),
        "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else [],
        "numpy": {
            "keys": torch.from_numpy(np_state[1].astype(np.int64)),
            "pos": int(np_state[2]),
            "has_gauss": int(np_state[3]),
            "cached": float(np_state[4]),
        },
        "python": random.getstate(),
    }


def set_rng_state(state: dict) -> None:
    torch.set_rng_state(state["torch"])
    if state["cuda"] and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])
    n = state["numpy"]
    np.random.set_state(("MT19937", n["keys"].numpy().astype(np.uint32), n["pos"], n["has_gauss"], n["cached"]))
    random.setstate(state["python"])


def latest_checkpoint(out: str | os.PathLike) -> Path | None:
    folder = Path(out) / "checkpoints"
    found = sorted(p for p in folder.glob("step_*") if CHECKPOINT.match(p.name) and (p / "training_state.pt").is_file())
    return found[-1] if found else None


# ----------------------------------------------------------------------------- trainer
class Trainer:
    """Holds the model, objective, optimizer, scheduler, EMA and sampler of one run.

    ``model``: a :class:`~nvs.models.pathnvs.PathNVSModel`; ``scenes``: a scene set for
    :func:`~nvs.data.clips.load_batch`; ``objective`` options: see :class:`EDMObjective`.
    """

    def __init__(
        self,
        model: nn.Module,
        scenes: SceneSet,
        settings: TrainerSettings,
        sampler_options: dict | None = None,
        objective_options: dict | None = None,
        camera_radius: float | None = 1.5,
        seed: int = 0,
        info: D.DistInfo | None = None,
        target_background: str | None = None,
    ) -> None:
        self.settings, self.scenes, self.camera_radius = settings, scenes, camera_radius
        self.target_background = target_background
        self.info = info or D.DistInfo()
        self.out = Path(settings.out)
        torch.manual_seed(seed)
        np.random.seed(seed % 2**32)
        random.seed(seed)
        self.model = model.to(self.info.device)
        self.trained_names = set(set_trainable(self.model, settings.freeze_spatial))
        if settings.gradient_checkpointing:
            self.model.unet.enable_gradient_checkpointing()
        self.objective = EDMObjective(self.model, seed=seed, **(objective_options or {}))
        self.wrapped = D.wrap(
            self.objective,
            self.info,
            settings.parallel,
            unet=self.model.unet,
            find_unused_parameters=settings.find_unused_parameters,
        )
        self.sampler = ClipSampler(
            scenes.frame_counts,
            self.model.settings.num_frames,
            settings.batch_size,
            seed=seed,
            rank=self.info.rank,
            world_size=self.info.world_size,
            **(sampler_options or {}),
        )
        params = self.named_trained()
        self.optimizer = torch.optim.AdamW(
            params.values(), lr=settings.lr, betas=settings.betas, weight_decay=settings.weight_decay, fused=True
        )
        self.scheduler = torch.optim.lr_scheduler.LambdaLR(
            self.optimizer, lambda s: lr_factor(s, settings.warmup_steps, settings.steps, settings.schedule)
        )
        self.ema = EMA(params, settings.ema_decay)
        self.step = 0
        self.writer = None
        use_bf16 = settings.precision == "bf16" or (settings.precision == "auto" and self.info.device.type == "cuda")
        self.autocast = (
            (lambda: torch.autocast(self.info.device.type, dtype=torch.bfloat16)) if use_bf16 else nullcontext
        )
        self.preview: TrainBatch | None = None

    def named_trained(self) -> dict[str, Tensor]:
        return {n: p for n, p in self.model.named_parameters() if n in self.trained_names}

    # ------------------------------------------------------------------ one step
    def train_step(self, batch: TrainBatch) -> dict[str, float]:
        """Forward, backward, clip, AdamW, scheduler, EMA on this rank's part of a batch."""
        self.model.unet.train()
        self.model.conditioner.train()
        with self.autocast():
            loss, terms = self.wrapped(batch.to(self.info.device))
        if not torch.isfinite(loss):
            raise FloatingPointError(f"loss is {loss.item()} at step {self.step}: lower trainer.lr or check the data")
        loss.backward()
        params = self.named_trained()
        if self.info.enabled and self.settings.parallel == "fsdp":
            D.average_replicated_grads(params.values(), self.info)
        grad_norm = nn.utils.clip_grad_norm_(list(params.values()), self.settings.grad_clip)
        self.optimizer.step()
        self.scheduler.step()
        self.optimizer.zero_grad(set_to_none=True)
        self.ema.update(params)
        self.step += 1
        out = {k: float(D.all_mean(v, self.info)) for k, v in terms.items()}
        out |= {"grad_norm": float(grad_norm), "lr": self.scheduler.get_last_lr()[0]}
        return out

    def next_batch(self) -> TrainBatch:
        if self.sampler.step != self.step:
            raise RuntimeError(f"data position {self.sampler.step} and step {self.step} disagree")
        return load_batch(self.scenes, next(self.sampler), self.camera_radius, self.target_background)

    # ------------------------------------------------------------------ the loop
    @property
    def last_step(self) -> int:
        """Where the run ends: ``stop_at``, else ``steps``."""
        return self.settings.stop_at or self.settings.steps

    def fit(self) -> dict[str, float]:
        """Train to :attr:`last_step` (resuming first if asked), or until ``time_limit_minutes``;
        returns the last step's terms. The EMA model is exported when the last step is reached."""
        from tqdm.auto import tqdm

        s = self.settings
        if s.resume:
            path = latest_checkpoint(self.out) if s.resume == "auto" else Path(s.resume)
            if path is not None:
                self.load_checkpoint(path)
        if self.info.is_main and s.tensorboard:
            try:
                from torch.utils.tensorboard import SummaryWriter
            except ImportError as err:
                raise ImportError(
                    f"tensorboard logs need the tensorboard package ({err}): pip install tensorboard, "
                    "or pass trainer.tensorboard=false"
                ) from err
            self.writer = SummaryWriter(str(self.out / "tb"), purge_step=self.step)
        self.preview = load_batch(self.scenes, [self.sampler.clip(0, 0)], self.camera_radius, self.target_background)
        if self.info.is_main:
            cut_log(self.out / "log.jsonl", self.step)
        deadline = time.monotonic() + 60 * s.time_limit_minutes if s.time_limit_minutes else None
        terms: dict[str, float] = {}
        bar = tqdm(
            total=self.last_step, initial=self.step, desc="train", disable=not (s.progress and self.info.is_main)
        )
        while self.step < self.last_step:
            terms = self.train_step(self.next_batch())
            bar.update(1)
            bar.set_postfix(loss=f"{terms['loss']:.4f}")
            if self.step % max(1, s.log_every) == 0 or self.step == self.last_step:
                if self.writer is not None:
                    for k, v in terms.items():
                        self.writer.add_scalar(f"train/{k}", v, self.step)
                if self.info.is_main:
                    append_log(self.out / "log.jsonl", {"step": self.step, "time": time.time(), **terms})
            last = self.step == self.last_step
            if s.checkpoint_every and (self.step % s.checkpoint_every == 0 or last):
                self.save_checkpoint()
            if s.sample_every and (self.step % s.sample_every == 0 or last):
                self.write_samples()
            if self._out_of_time(deadline) and self.step < self.last_step:
                self.save_checkpoint()
                if self.info.is_main:
                    print(
                        f"time limit of {s.time_limit_minutes} min reached at step {self.step}/{self.last_step}: "
                        "checkpoint written; run the same command again to resume"
                    )
                break
        bar.close()
        if s.export and self.step == self.last_step:
            self.export(self.out / "model")
        if self.writer is not None:
            self.writer.close()
        D.barrier(self.info)
        return terms

    def _out_of_time(self, deadline: float | None) -> bool:
        """Past the deadline on any rank (so that every rank stops at the same step)."""
        if deadline is None:
            return False
        late = torch.tensor(float(time.monotonic() > deadline), device=self.info.device)
        return bool(D.all_mean(late, self.info) > 0)

    # ------------------------------------------------------------------ state
    def trainable_state(self) -> dict[str, Tensor]:
        """Full (unsharded) U-Net and conditioner state, keys prefixed ``unet.`` / ``conditioner.``."""
        state = {f"unet.{k}": v for k, v in D.full_state_dict(self.model.unet).items()}
        return state | {f"conditioner.{k}": v for k, v in D.full_state_dict(self.model.conditioner).items()}

    def ema_state(self) -> dict[str, Tensor]:
        from torch.distributed.tensor import DTensor

        return {
            n: (t.full_tensor() if isinstance(t, DTensor) else t).detach().to("cpu", copy=True).contiguous()
            for n, t in self.ema.shadow.items()
        }

    def _optimizer_state(self) -> dict:
        if D.is_sharded(self.model.unet):
            from torch.distributed.checkpoint.state_dict import StateDictOptions, get_optimizer_state_dict

            return get_optimizer_state_dict(
                self.objective, self.optimizer, options=StateDictOptions(full_state_dict=True, cpu_offload=True)
            )
        return self.optimizer.state_dict()

    def save_checkpoint(self) -> Path:
        """Write ``out/checkpoints/step_XXXXXXX`` atomically (collective; rank 0 writes)."""
        from safetensors.torch import save_file

        trainable, ema, optim = self.trainable_state(), self.ema_state(), self._optimizer_state()
        folder = self.out / "checkpoints" / f"step_{self.step:07d}"
        if self.info.is_main:
            from camera.io import atomic_folder

            with atomic_folder(folder) as tmp:
                save_file(trainable, str(tmp / "trainable.safetensors"))
                save_file(ema, str(tmp / "ema.safetensors"))
                torch.save(
                    {
                        "step": self.step,
                        "data": self.sampler.state_dict(),
                        "optimizer": optim,
                        "scheduler": self.scheduler.state_dict(),
                        "rng": rng_state(),
                        "trained_names": sorted(self.trained_names),
                    },
                    tmp / "training_state.pt",
                )
            self._prune_checkpoints()
            if (self.out / "log.jsonl").is_file():
                plot_training_curve(self.out / "log.jsonl", self.out / "training_curve.png")
        D.barrier(self.info)
        return folder

    def _prune_checkpoints(self) -> None:
        keep = self.settings.keep_checkpoints
        found = sorted(p for p in (self.out / "checkpoints").glob("step_*") if CHECKPOINT.match(p.name))
        for old in found[:-keep] if keep > 0 else []:
            shutil.rmtree(old)

    def load_checkpoint(self, folder: str | os.PathLike) -> None:
        """Restore everything :meth:`save_checkpoint` wrote (every rank reads the same files)."""
        from safetensors.torch import load_file

        folder = Path(folder)
        missing = [
            n for n in ("trainable.safetensors", "ema.safetensors", "training_state.pt") if not (folder / n).is_file()
        ]
        if missing:
            raise FileNotFoundError(f"{folder}: not a complete checkpoint (missing {', '.join(missing)})")
        state = torch.load(folder / "training_state.pt", map_location="cpu", weights_only=True)
        if set(state["trained_names"]) != self.trained_names:
            raise ValueError(
                f"{folder}: the checkpoint trained other parameters (freeze_spatial or the model "
                "differ); resume with the same model, conditioning and trainer.freeze_spatial"
            )
        trainable = load_file(str(folder / "trainable.safetensors"))
        D.load_full_state_dict(self.model.unet, {k[5:]: v for k, v in trainable.items() if k.startswith("unet.")})
        D.load_full_state_dict(
            self.model.conditioner, {k[12:]: v for k, v in trainable.items() if k.startswith("conditioner.")}
        )
        ema = load_file(str(folder / "ema.safetensors"))
        with torch.no_grad():
            for n, shadow in self.ema.shadow.items():
                self.ema.shadow[n] = _like(ema[n], shadow)
        if D.is_sharded(self.model.unet):
            from torch.distributed.checkpoint.state_dict import StateDictOptions, set_optimizer_state_dict

            set_optimizer_state_dict(
                self.objective, self.optimizer, state["optimizer"], options=StateDictOptions(full_state_dict=True)
            )
        else:
            self.optimizer.load_state_dict(state["optimizer"])
        self.scheduler.load_state_dict(state["scheduler"])
        self.sampler.load_state_dict(state["data"])
        set_rng_state(state["rng"])
        self.step = int(state["step"])

    # ------------------------------------------------------------------ outputs
    def export(self, folder: str | os.PathLike) -> None:
        """The EMA weights as a PathNVSModel folder (collective; rank 0 writes)."""
        from nvs.models.pathnvs import PathNVSModel

        trainable, ema = self.trainable_state(), self.ema_state()
        if self.info.is_main:
            trainable |= ema
            unet = D.plain_class(self.model.unet).from_config(self.model.unet.config)
            unet.load_state_dict({k[5:]: v for k, v in trainable.items() if k.startswith("unet.")})
            conditioner = copy.deepcopy(self.model.conditioner).cpu()
            conditioner.load_state_dict({k[12:]: v for k, v in trainable.items() if k.startswith("conditioner.")})
            m = self.model
            exported = PathNVSModel(
                unet,
                copy.deepcopy(m.vae).cpu(),
                copy.deepcopy(m.image_encoder).cpu(),
                conditioner,
                m.settings,
                m.conditioner_config,
            )
            exported.to(getattr(torch, self.settings.export_dtype)).save_pretrained(folder)
        D.barrier(self.info)

    @torch.no_grad()
    def write_samples(self) -> Path:
        """Sample the fixed preview clip with the current weights; rank 0 writes the grid PNG."""
        from nvs.sampling import karras_sigmas, sample

        s, m = self.settings, self.model
        m.unet.eval()
        m.conditioner.eval()
        batch = self.preview.to(self.info.device)
        with self.autocast():
            cond = m.condition(
                batch.conditioning_inputs(m.settings.latent_size, with_targets=False),
                generator=torch.Generator(self.info.device).manual_seed(0),
            )
            shape = (1, m.settings.num_frames, 4, *m.settings.latent_size)
            latents = sample(
                m,
                cond,
                shape,
                karras_sigmas(s.sample_steps),
                s.sample_guidance,
                generator=torch.Generator(self.info.device).manual_seed(0),
            )
            frames = m.decode_latents(latents)
        path = self.out / "samples" / f"step_{self.step:07d}.png"
        if self.info.is_main:
            save_grid(
                path,
                batch.input_images[0].cpu(),
                batch.target_images[0].cpu(),
                frames[0].float().cpu(),
                f"step {self.step}",
            )
            if self.writer is not None:
                self.writer.add_images("samples", frames[0].float().cpu(), self.step)
        return path


def _like(value: Tensor, template: Tensor) -> Tensor:
    from torch.distributed.tensor import DTensor, distribute_tensor

    if isinstance(template, DTensor):
        return distribute_tensor(value.to(template.device, template.dtype), template.device_mesh, template.placements)
    return value.to(template.device, template.dtype)


def save_grid(path: Path, inputs: Tensor, targets: Tensor, samples: Tensor, title: str) -> None:
    """Rows: input views, target frames, sampled frames. inputs [V, 3, H, W]; targets, samples [F, 3, H, W]."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = [("input", inputs), ("target", targets), ("sample", samples)]
    cols = max(len(x) for _, x in rows)
    fig, axes = plt.subplots(3, cols, figsize=(1.6 * cols, 5.0), squeeze=False)
    for r, (label, images) in enumerate(rows):
        for c in range(cols):
            ax = axes[r, c]
            ax.axis("off")
            if c < len(images):
                ax.imshow(images[c].permute(1, 2, 0).clamp(0, 1).numpy())
        axes[r, 0].set_title(label, fontsize=8, loc="left")
    fig.suptitle(title)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp.png")
    fig.savefig(tmp, dpi=80)
    plt.close(fig)
    os.replace(tmp, path)


# ----------------------------------------------------------------------------- training log
def append_log(path: Path, terms: dict) -> None:
    import json

    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a") as f:
        f.write(json.dumps(terms) + "\n")


def read_log(path: Path) -> list[dict]:
    import json

    if not path.is_file():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def cut_log(path: Path, step: int) -> None:
    """Drop the lines logged after ``step`` (a resumed run logs them again)."""
    rows = read_log(path)
    kept = [r for r in rows if r["step"] <= step]
    if len(kept) != len(rows):
        import json

        from camera.io import atomic_write_text

        atomic_write_text(path, "".join(json.dumps(r) + "\n" for r in kept))


def plot_training_curve(log: Path, path: Path) -> None:
    """Loss terms (log scale) and learning rate against the step, from ``log.jsonl``."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from camera.plot import save_figure

    rows = read_log(log)
    if not rows:
        return
    steps = np.array([r["step"] for r in rows])
    names = [k for k in rows[-1] if k not in ("step", "time", "lr", "grad_norm")]
    fig, (ax0, ax1) = plt.subplots(1, 2, figsize=(10, 3.6))
    for name in names:
        values = np.array([r.get(name, np.nan) for r in rows], dtype=float)
        k = max(1, len(values) // 40)
        ax0.plot(steps, values, alpha=0.25)
        if len(values) >= k:
            ax0.plot(
                steps[k - 1 :],
                np.convolve(values, np.ones(k) / k, mode="valid"),
                label=f"{name} (mean of {k})",
                color=ax0.lines[-1].get_color(),
            )
    ax0.set(xlabel="step", ylabel="loss", yscale="log", title="training losses")
    ax0.legend(fontsize=7)
    ax1.plot(steps, [r.get("lr", np.nan) for r in rows])
    ax1.set(xlabel="step", ylabel="learning rate", title="schedule")
    fig.tight_layout()
    save_figure(fig, path, close=True, dpi=110)
