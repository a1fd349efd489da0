"""The training loop: AdamW + warm-up, grad clipping, EMA, bf16 on CUDA, checkpoints, exact resume.

Trained: the U-Net (all of it, or only its temporal layers with ``freeze_spatial``, as IM-3D)
and the conditioner; the VAE and the CLIP encoder are frozen and in eval mode.

Output folder ``out``: ``checkpoints/step_XXXXXXX/`` (:mod:`nvs.train.checkpoint`), ``tb/``
(tensorboard events), ``samples/step_XXXXXXX.png``, ``log.jsonl`` and ``training_curve.png``
(:mod:`nvs.train.log`), ``model/`` (the EMA model, ``PathNVSModel.save_pretrained`` in
``export_dtype``). Resuming restores every piece, and the clip sampler and the noise draws are
functions of (seed, step, sample index), so a resumed run repeats the losses of an uninterrupted
one exactly (bitwise on CPU).

A step never waits for the host: in-memory scenes live on the device with their targets' latents
(:class:`~nvs.data.device_clips.DeviceClips`, ``trainer.device_data``), the noise is drawn there,
AdamW is fused and the EMA one foreach lerp over all parameters. The host's part of a step
(:meth:`Trainer.stage`: the batch and its cameras onto the device, the noise generators seeded)
comes before its device part (:meth:`Trainer.device_step`), which reads nothing from the host, so
``trainer.cuda_graph`` can replay it from a CUDA graph per input-view count (:mod:`nvs.train.graphed`).
The loss terms stay on the device and are read, with one synchronisation, only at log steps,
where the finiteness check, the all-reduce of the terms and (under torchrun) the time limit
happen too. With
``trainer.compile`` (default: on CUDA) the U-Net runs under torch.compile: the input-view count
V, drawn per step, is its cross-attention length, so it compiles a graph for the first V, one
dynamic in V at the second, and one for V = 1 (sizes of 1 are specialised): up to three.
"""

from __future__ import annotations

import copy
import math
import random
import re
import time
from contextlib import nullcontext
from pathlib import Path

import numpy as np
import torch
from torch import Tensor, nn

from nvs.data.clips import ClipSampler, TrainBatch, load_batch
from nvs.data.device_clips import DeviceClips, batch_on_device
from nvs.data.scenes import MemoryScenes, SceneSet
from nvs.train import checkpoint as C
from nvs.train import distributed as D
from nvs.train.graphed import GraphedStep, check_graphable, set_capturable
from nvs.train.log import append_log, cut_log, plot_training_curve, sample_preview, save_grid
from nvs.train.loss import EDMObjective, Prepared
from nvs.train.settings import TrainerSettings
from nvs.train.updates import EMA, lr_factor

TEMPORAL_PARAMETER = re.compile(r"(^|\.)(temporal_transformer_blocks|temporal_res_block|time_mixer|time_pos_embed)\.")


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


class Trainer:
    """Holds the model, objective, optimizer, scheduler, EMA, sampler and data of one run.

    ``model``: a :class:`~nvs.models.pathnvs.PathNVSModel`; ``scenes``: a scene set
    (:mod:`nvs.data.scenes`); ``objective`` options: see :class:`EDMObjective`.
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
        check_graphable(settings, self.info)
        self.out = Path(settings.out)
        torch.manual_seed(seed)
        np.random.seed(seed % 2**32)
        random.seed(seed)
        self.model = model.to(self.info.device)
        self.trained_names = set(set_trainable(self.model, settings.freeze_spatial))
        if settings.gradient_checkpointing and settings.checkpoint_granularity == "blocks":
            self.model.unet.enable_block_checkpointing()
        elif settings.gradient_checkpointing:
            self.model.unet.enable_gradient_checkpointing()
        use_bf16 = settings.precision == "bf16" or (settings.precision == "auto" and self.info.device.type == "cuda")
        # a CUDA graph cannot keep autocast's cache of cast weights (torch.cuda.graphs docs)
        cache = not settings.cuda_graph
        self.autocast = (
            (lambda: torch.autocast(self.info.device.type, dtype=torch.bfloat16, cache_enabled=cache))
            if use_bf16
            else nullcontext
        )
        self.clips: DeviceClips | None = None
        if settings.device_data and isinstance(scenes, MemoryScenes):
            self.clips = DeviceClips(scenes, self.info.device, camera_radius, target_background)
            with self.autocast():
                self.clips.cache_target_latents(self.model.encode_images)
        self.compiled = settings.compile if settings.compile is not None else self.info.device.type == "cuda"
        if self.compiled:
            self.model.unet.compile()
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
        self.graphed = GraphedStep(self) if settings.cuda_graph else None
        self.step = 0
        self.writer = None
        self.preview: TrainBatch | None = None

    def named_trained(self) -> dict[str, Tensor]:
        return {n: p for n, p in self.model.named_parameters() if n in self.trained_names}

    # ------------------------------------------------------------------ one step
    def train_step(self, batch: TrainBatch) -> dict[str, Tensor | float]:
        """Forward, backward, clip, AdamW, scheduler, EMA on this rank's part of a batch.

        Returns the step's terms (this rank's) as detached device scalars, plus ``lr``: nothing
        here waits for the device; :meth:`read_terms` reads them. The host's part (:meth:`stage`)
        comes first, then the device's (:meth:`run_staged`), which reads nothing from the host."""
        return self.run_staged(*self.stage(batch))

    def stage(self, batch: TrainBatch) -> tuple[TrainBatch, Prepared]:
        """The batch (images, cameras) on the device and the objective's generators seeded."""
        batch = batch_on_device(batch, self.info.device)
        return batch, self.objective.prepare(batch, self.info.device)

    def run_staged(self, batch: TrainBatch, prepared: Prepared) -> dict[str, Tensor | float]:
        """:meth:`device_step` (replayed from a CUDA graph with ``trainer.cuda_graph``), then the scheduler."""
        terms = self.graphed(batch, prepared) if self.graphed is not None else self.device_step(batch, prepared)
        self.scheduler.step()
        self.step += 1
        return terms | {"lr": self.scheduler.get_last_lr()[0]}

    def device_step(self, batch: TrainBatch, prepared: Prepared) -> dict[str, Tensor]:
        """Forward, backward, clip, AdamW, EMA: device work only (what :mod:`nvs.train.graphed` captures)."""
        self.model.unet.train()
        self.model.conditioner.train()
        with self.autocast():
            loss, terms = self.wrapped(batch, prepared)
        loss.backward()
        params = self.named_trained()
        if self.info.enabled and self.settings.parallel == "fsdp":
            D.average_replicated_grads(params.values(), self.info)
        grad_norm = nn.utils.clip_grad_norm_(list(params.values()), self.settings.grad_clip)
        self.optimizer.step()
        self.optimizer.zero_grad(set_to_none=True)
        self.ema.update(params)
        return terms | {"grad_norm": grad_norm.detach()}

    def read_terms(self, terms: dict[str, Tensor | float]) -> dict[str, float]:
        """The terms of :meth:`train_step` as floats, averaged over ranks (collective): one
        synchronisation. A non-finite loss is an error here."""
        names = [k for k, v in terms.items() if isinstance(v, Tensor)]
        values = D.all_mean(torch.stack([terms[k].float() for k in names]), self.info).tolist()
        out = dict(zip(names, values)) | {k: float(v) for k, v in terms.items() if not isinstance(v, Tensor)}
        if not math.isfinite(out["loss"]):
            raise FloatingPointError(
                f"loss is {out['loss']} at step {self.step} (checked every trainer.log_every steps): "
                "lower trainer.lr or check the data"
            )
        return out

    def next_batch(self) -> TrainBatch:
        if self.sampler.step != self.step:
            raise RuntimeError(f"data position {self.sampler.step} and step {self.step} disagree")
        specs = next(self.sampler)
        if self.clips is not None:
            return self.clips.batch(specs, self.sampler.global_batch)
        batch = load_batch(self.scenes, specs, self.camera_radius, self.target_background, self.sampler.global_batch)
        return batch.to(self.info.device)

    # ------------------------------------------------------------------ the loop
    @property
    def last_step(self) -> int:
        """Where the run ends: ``stop_at``, else ``steps``."""
        return self.settings.stop_at or self.settings.steps

    def fit(self) -> dict[str, float]:
        """Train to :attr:`last_step` (resuming first if asked), or until ``time_limit_minutes``;
        returns the last logged terms. The EMA model is exported when the last step is reached
        (and at the time limit with ``export_at_time_limit``)."""
        from tqdm.auto import tqdm

        s = self.settings
        if s.resume:
            path = C.latest_checkpoint(self.out) if s.resume == "auto" else Path(s.resume)
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
        logged: dict[str, float] = {}
        bar = tqdm(
            total=self.last_step, initial=self.step, desc="train", disable=not (s.progress and self.info.is_main)
        )
        while self.step < self.last_step:
            terms = self.train_step(self.next_batch())
            bar.update(1)
            last = self.step == self.last_step
            log_now = self.step % max(1, s.log_every) == 0 or last
            if log_now:
                logged = self.read_terms(terms)
                bar.set_postfix(loss=f"{logged['loss']:.4f}")
                if self.writer is not None:
                    for k, v in logged.items():
                        self.writer.add_scalar(f"train/{k}", v, self.step)
                if self.info.is_main:
                    append_log(self.out / "log.jsonl", {"step": self.step, "time": time.time(), **logged})
            if s.checkpoint_every and (self.step % s.checkpoint_every == 0 or last):
                self.save_checkpoint()
            if s.sample_every and (self.step % s.sample_every == 0 or last):
                self.write_samples()
            if not last and (log_now or not self.info.enabled) and self._out_of_time(deadline):
                self.save_checkpoint()
                if s.export_at_time_limit and s.export:
                    self.export(self.out / "model")
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
        return logged

    def _out_of_time(self, deadline: float | None) -> bool:
        """Past the deadline on any rank (collective under torchrun, so every rank stops at the same step)."""
        if deadline is None:
            return False
        late = time.monotonic() > deadline
        if not self.info.enabled:
            return late
        return bool(D.all_mean(torch.tensor(float(late), device=self.info.device), self.info) > 0)

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
        trainable, ema, optim = self.trainable_state(), self.ema_state(), self._optimizer_state()
        folder = C.checkpoint_folder(self.out, self.step)
        if self.info.is_main:
            state = {
                "step": self.step,
                "data": self.sampler.state_dict(),
                "optimizer": optim,
                "scheduler": self.scheduler.state_dict(),
                "rng": C.rng_state(),
                "trained_names": sorted(self.trained_names),
            }
            C.write_checkpoint(folder, trainable, ema, state)
            C.prune_checkpoints(self.out, self.settings.keep_checkpoints)
            if (self.out / "log.jsonl").is_file():
                plot_training_curve(self.out / "log.jsonl", self.out / "training_curve.png")
        D.barrier(self.info)
        return folder

    def load_checkpoint(self, folder: str | Path) -> None:
        """Restore everything :meth:`save_checkpoint` wrote (every rank reads the same files)."""
        trainable, ema, state = C.read_checkpoint(folder)
        if set(state["trained_names"]) != self.trained_names:
            raise ValueError(
                f"{folder}: the checkpoint trained other parameters (freeze_spatial or the model "
                "differ); resume with the same model, conditioning and trainer.freeze_spatial"
            )
        D.load_full_state_dict(self.model.unet, {k[5:]: v for k, v in trainable.items() if k.startswith("unet.")})
        D.load_full_state_dict(
            self.model.conditioner, {k[12:]: v for k, v in trainable.items() if k.startswith("conditioner.")}
        )
        with torch.no_grad():
            for n, shadow in self.ema.shadow.items():
                self.ema.shadow[n] = C.placed_like(ema[n], shadow)
        if D.is_sharded(self.model.unet):
            from torch.distributed.checkpoint.state_dict import StateDictOptions, set_optimizer_state_dict

            set_optimizer_state_dict(
                self.objective, self.optimizer, state["optimizer"], options=StateDictOptions(full_state_dict=True)
            )
        else:
            self.optimizer.load_state_dict(state["optimizer"])
        self.scheduler.load_state_dict(state["scheduler"])
        self.sampler.load_state_dict(state["data"])
        C.set_rng_state(state["rng"])
        self.step = int(state["step"])
        if self.graphed is not None:  # new graphs: the old ones hold the replaced state tensors
            self.graphed = GraphedStep(self)
        else:  # a graphed run's checkpoint holds a tensor learning rate
            set_capturable(self.optimizer, None)

    # ------------------------------------------------------------------ outputs
    def export(self, folder: str | Path) -> None:
        """The EMA weights as a PathNVSModel folder (collective; rank 0 writes)."""
        from conditioning.build import build_conditioner
        from nvs.models.pathnvs import PathNVSModel

        trainable, ema = self.trainable_state(), self.ema_state()
        if self.info.is_main:
            trainable |= ema
            m = self.model
            unet = D.plain_class(m.unet).from_config(m.unet.config)
            unet.load_state_dict({k[5:]: v for k, v in trainable.items() if k.startswith("unet.")})
            # built afresh rather than copied: a copy of a compiled network would call the original
            conditioner = build_conditioner(m.conditioner.build_config)
            conditioner.load_state_dict({k[12:]: v for k, v in trainable.items() if k.startswith("conditioner.")})
            parts = (copy.deepcopy(m.vae).cpu(), copy.deepcopy(m.image_encoder).cpu())
            exported = PathNVSModel(unet, *parts, conditioner, m.settings)
            exported.to(getattr(torch, self.settings.export_dtype)).save_pretrained(folder)
        D.barrier(self.info)

    def write_samples(self) -> Path:
        """Sample the fixed preview clip with the current weights; rank 0 writes the grid PNG."""
        batch = self.preview.to(self.info.device)
        with self.autocast():
            frames = sample_preview(self.model, batch, self.settings.sample_steps, self.settings.sample_guidance)
        path = self.out / "samples" / f"step_{self.step:07d}.png"
        if self.info.is_main:
            save_grid(path, batch.input_images[0].cpu(), batch.target_images[0].cpu(), frames, f"step {self.step}")
            if self.writer is not None:
                self.writer.add_images("samples", frames, self.step)
        return path
