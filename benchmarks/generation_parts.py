"""Pieces of ``benchmarks/generation.py``: the model and scene, timers, frame comparison, and the
diffusers reference (its ``UNetSpatioTemporalConditionModel`` and ``StableVideoDiffusionPipeline``
on the same random weights)."""

from __future__ import annotations

import copy
import gc
import statistics
import time
from collections import defaultdict
from collections.abc import Callable

import torch
from torch import Tensor

# stabilityai/stable-video-diffusion-img2vid's scheduler_config.json: EDM's Karras schedule in
# diffusers' Euler scheduler (v-prediction, continuous timesteps 0.25 ln σ), as nvs.sampling samples it
SVD_SCHEDULER = {
    "beta_end": 0.012,
    "beta_schedule": "scaled_linear",
    "beta_start": 0.00085,
    "interpolation_type": "linear",
    "num_train_timesteps": 1000,
    "prediction_type": "v_prediction",
    "sigma_max": 700.0,
    "sigma_min": 0.002,
    "steps_offset": 1,
    "timestep_spacing": "leading",
    "timestep_type": "continuous",
    "use_karras_sigmas": True,
}


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def peak_gib(device: torch.device) -> float | None:
    return torch.cuda.max_memory_allocated(device) / 2**30 if device.type == "cuda" else None


def reset_peak(device: torch.device) -> None:
    if device.type == "cuda":
        gc.collect()
        torch.cuda.empty_cache()
        torch.cuda.reset_peak_memory_stats(device)


def build(preset: str, conditioning: str, size: int | tuple[int, int], device: torch.device, dtype: torch.dtype):
    """PathNVSModel with random weights at ``preset`` (``configs/model``) and ``conditioning``
    (``configs/conditioning``), generating ``size`` images, on ``device`` in ``dtype``, frozen.
    The tiny preset gets a 224² CLIP input, the size diffusers' SVD pipeline resizes to."""
    from omegaconf import OmegaConf

    from nvs.config import CONFIG_DIR
    from nvs.models import PathNVSModel
    from nvs.models.presets import preset_config

    cfg = preset_config(preset)
    cfg["settings"]["image_size"] = list(size) if isinstance(size, tuple) else [size, size]
    if preset == "tiny":
        cfg["clip"].update(image_size=224, patch_size=32)
    torch.manual_seed(0)
    with torch.device(device):
        model = PathNVSModel.from_preset(cfg, OmegaConf.load(CONFIG_DIR / "conditioning" / f"{conditioning}.yaml"))
    model = model.to(device=device, dtype=dtype).eval()
    for p in model.parameters():
        p.requires_grad_(False)
    return model


def scene(frames: int, height: int, width: int | None = None, inputs: int = 1):
    """(input Views, path Cameras): ``inputs`` views on an orbit with 8-bit random images (so that a
    PIL copy for diffusers holds the same pixels) and a spiral of ``frames`` poses."""
    from camera.presets import orbit, spiral
    from camera.views import Views

    width = width or height
    cams = orbit(max(inputs, 2), radius=2.0, elevation_deg=15.0, height=height, width=width)[:inputs]
    g = torch.Generator().manual_seed(0)
    images = torch.randint(0, 256, (inputs, 3, height, width), generator=g).float() / 255
    path = spiral(frames, height=height, width=width).to(dtype=torch.float32)
    return Views(images, cams.to(dtype=torch.float32)), path


def time_steps(step: Callable[[], object], device: torch.device, warmup: int, repeats: int) -> tuple[float, float]:
    """-> (median seconds per call, seconds of the ``warmup`` first calls)."""
    sync(device)
    start = time.perf_counter()
    for _ in range(warmup):
        step()
    sync(device)
    warm = time.perf_counter() - start
    times = []
    for _ in range(repeats):
        sync(device)
        start = time.perf_counter()
        step()
        sync(device)
        times.append(time.perf_counter() - start)
    return statistics.median(times), warm


class Parts:
    """Time spent inside chosen callables, by name: CUDA events on CUDA (no extra synchronisation),
    the wall clock on CPU. ``wrap`` shadows ``owner.attr`` with a timed copy; ``restore`` removes it.
    ``keep`` names whose first argument is kept (on the CPU) on each call."""

    def __init__(self, device: torch.device, keep: tuple[str, ...] = ()) -> None:
        self.device, self.keep = device, keep
        self.spans: dict[str, list] = defaultdict(list)
        self.kept: dict[str, list[Tensor]] = defaultdict(list)
        self._undo: list[tuple[object, str, object]] = []

    def _mark(self):
        if self.device.type == "cuda":
            event = torch.cuda.Event(enable_timing=True)
            event.record()
            return event
        return time.perf_counter()

    def wrap(self, owner: object, attr: str, name: str) -> None:
        original = getattr(owner, attr)

        def timed(*args, **kwargs):
            start = self._mark()
            out = original(*args, **kwargs)
            self.spans[name].append((start, self._mark()))
            if name in self.keep:
                self.kept[name].append(args[0].detach().float().cpu())
            return out

        self._undo.append((owner, attr, vars(owner).get(attr)))  # an instance attribute it shadows, if any
        setattr(owner, attr, timed)

    def restore(self) -> None:
        for owner, attr, before in reversed(self._undo):
            if before is None:
                delattr(owner, attr)
            else:
                setattr(owner, attr, before)
        self._undo.clear()

    def seconds(self) -> dict[str, float]:
        sync(self.device)
        if self.device.type == "cuda":
            return {k: sum(a.elapsed_time(b) for a, b in v) / 1e3 for k, v in self.spans.items()}
        return {k: sum(b - a for a, b in v) for k, v in self.spans.items()}


OUR_PARTS = {  # name -> (attribute path from the model, method)
    "clip": ("", "clip_tokens"),
    "vae_encode": ("vae", "encode"),
    "conditioner": ("conditioner", "forward"),
    "unet": ("", "denoise"),
    "vae_decode": ("", "decode_latents"),
}
DIFFUSERS_PARTS = {"clip": ("image_encoder", "forward"), "vae_encode": ("vae", "encode"), "unet": ("unet", "forward")}
DIFFUSERS_PARTS["vae_decode"] = ("vae", "decode")


def timed_call(
    run: Callable[[], object], root: object, parts: dict, device: torch.device, keep: tuple[str, ...] = ()
) -> tuple[object, dict]:
    """Run ``run()`` with ``parts`` of ``root`` timed; -> (its output, {seconds, peak_gib, shares, parts})."""
    timer = Parts(device, keep)
    for name, (path, attr) in parts.items():
        timer.wrap(root if not path else getattr(root, path), attr, name)
    reset_peak(device)
    try:
        sync(device)
        start = time.perf_counter()
        out = run()
        sync(device)
        total = time.perf_counter() - start
    finally:
        timer.restore()
    inside = timer.seconds()
    inside["other"] = max(total - sum(inside.values()), 0.0)
    shares = {k: v / total for k, v in inside.items()}
    return out, {
        "seconds": total,
        "peak_gib": peak_gib(device),
        "parts_s": inside,
        "shares": shares,
        "kept": timer.kept,
    }


def compare(frames: Tensor, reference: Tensor) -> dict[str, float]:
    """Frames [F, 3, H, W] in [0, 1] against reference frames: max |difference| and PSNR (dB, mean
    over frames; inf when equal, nan when ``frames`` hold a non-finite value, which fails any target)."""
    from nvs.evaluation.metrics import psnr

    frames, reference = frames.float().cpu(), reference.float().cpu()
    if not torch.isfinite(frames).all():
        return {"max_abs_diff": float("nan"), "psnr_db": float("nan")}
    diff = (frames - reference).abs().max().item()
    value = psnr(frames.clamp(0, 1), reference.clamp(0, 1)).mean().item() if diff > 0 else float("inf")
    return {"max_abs_diff": diff, "psnr_db": value}


def relative_difference(a: Tensor, b: Tensor) -> float:
    """||a - b|| / ||b|| (float64)."""
    a, b = a.double().cpu(), b.double().cpu()
    return ((a - b).norm() / b.norm().clamp_min(1e-30)).item()


def split_cfg(model) -> Callable[[], None]:
    """Make ``model.denoise`` run a batch one scene at a time (the same computation with other
    matrix shapes: the bf16 noise floor of any rearrangement); returns the undo."""
    whole = model.denoise

    def denoise(noisy: Tensor, sigma: Tensor, cond) -> Tensor:
        pieces = cond.split(1)
        return torch.cat([whole(noisy[i : i + 1], sigma[i : i + 1], c) for i, c in enumerate(pieces)])

    model.denoise = denoise
    return lambda: delattr(model, "denoise")


def accelerated_copy(model, mode):
    """The model with its own copies of the U-Net and VAE (CLIP encoder and conditioner shared) in
    speed ``mode``: the original stays as it is, so modes run side by side."""
    from nvs.models.speed import accelerate

    twin = copy.copy(model)  # a shallow copy of an nn.Module shares its submodule dict: give it its own
    twin._modules = dict(model._modules)
    twin._modules["unet"] = copy.deepcopy(model.unet)
    twin._modules["vae"] = copy.deepcopy(model.vae)
    twin.__dict__.pop("speed", None)
    return accelerate(twin, mode)


# ---------------------------------------------------------------- diffusers' SVD on the same weights
def diffusers_unet(unet):
    """A plain diffusers ``UNetSpatioTemporalConditionModel`` holding ``unet``'s tensors (shared, not
    copied) with SVD's 8 input channels: our extra conv_in channels are zero-initialised, so at
    initialisation the two compute the same function."""
    from diffusers import UNetSpatioTemporalConditionModel

    config = {k: v for k, v in dict(unet.config).items() if not k.startswith("_")}
    with torch.device("meta"):
        plain = UNetSpatioTemporalConditionModel.from_config({**config, "in_channels": 8})
    state = unet.state_dict()
    state["conv_in.weight"] = state["conv_in.weight"][:, :8].contiguous()
    plain.load_state_dict(state, assign=True)
    return plain.eval()


def diffusers_pipeline(model, plain_unet):
    """diffusers' ``StableVideoDiffusionPipeline`` on the model's VAE and CLIP encoder and ``plain_unet``."""
    from diffusers import EulerDiscreteScheduler, StableVideoDiffusionPipeline
    from transformers import CLIPImageProcessor

    s = model.settings
    processor = CLIPImageProcessor(image_mean=list(s.clip_mean), image_std=list(s.clip_std))
    pipe = StableVideoDiffusionPipeline(
        vae=model.vae,
        image_encoder=model.image_encoder,
        unet=plain_unet,
        scheduler=EulerDiscreteScheduler(**SVD_SCHEDULER),
        feature_extractor=processor,
    )
    pipe.set_progress_bar_config(disable=True)
    return pipe


def run_diffusers(pipe, image: Tensor, settings, steps: int, guidance: tuple[float, float], seed: int) -> Tensor:
    """One SVD generation from ``image`` [3, H, W] (8-bit values in [0, 1], given as a PIL image,
    as SVD users do) -> frames [F, 3, H, W]. The noise is drawn as nvs.sampling draws it (from a CPU
    generator seeded ``seed``: the noise augmentation [1, 3, H, W], then the latents), so both
    pipelines start from the same numbers."""
    from PIL import Image

    height, width = settings.image_size
    h, w = settings.latent_size
    g = torch.Generator().manual_seed(seed)
    torch.randn((1, 3, height, width), generator=g)  # the augmentation noise: the pipeline draws it again
    latents = torch.randn((1, settings.num_frames, 4, h, w), generator=g)
    pil = Image.fromarray((image.permute(1, 2, 0) * 255).round().byte().numpy())
    out = pipe(
        pil,
        height=height,
        width=width,
        num_frames=settings.num_frames,
        num_inference_steps=steps,
        min_guidance_scale=guidance[0],
        max_guidance_scale=guidance[1],
        fps=settings.fps_id + 1,
        motion_bucket_id=settings.motion_bucket_id,
        noise_aug_strength=settings.noise_aug_strength,
        decode_chunk_size=settings.decode_chunk_size,
        generator=torch.Generator().manual_seed(seed),
        latents=latents.to(pipe.unet.device, pipe.unet.dtype),
        output_type="pt",
    )
    return out.frames[0].float().cpu()
