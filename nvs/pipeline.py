"""Generation along a camera path: wires data, conditioner, model and sampler (diffusers-style pipeline).

Inputs and path are resized to the model's image size. As in training, the cameras given to the
conditioner are recentred at the mean centre of inputs and path together and scaled so the
farthest lies at ``camera_radius`` (V3D: 1.5; None keeps them); the returned views carry the
path's own cameras.

``memory`` picks where the model's parts wait and run (:mod:`nvs.memory`: ``"default"`` keeps
everything on the model's device, ``"low"`` holds the parts on the CPU and moves each stage's
parts to the execution device while it runs); every mode gives the same frames.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor
from tqdm.auto import tqdm

from camera.cameras import Cameras
from camera.views import Views
from conditioning.base import ConditioningInputs
from nvs.chunking import Chunk, check_strategy, plan_chunks, run_chunks
from nvs.memory import MemoryMode, memory_mode
from nvs.models.pathnvs import PathNVSModel
from nvs.sampling import Guidance, SamplerSettings, sample


def resize_views(views: Views, height: int, width: int) -> Views:
    """Images (and masks) resampled to ``height x width`` (antialiased bilinear), cameras rescaled."""
    if (views.cameras.height, views.cameras.width) == (height, width):
        return views

    def resize(x: Tensor | None) -> Tensor | None:
        if x is None:
            return None
        return F.interpolate(x.float(), size=(height, width), mode="bilinear", antialias=True).clamp(0, 1)

    return Views(
        resize(views.images),
        views.cameras.resize(height, width),
        resize(views.masks),
        None,
        resize(views.valid_region),
        list(views.frame_ids),
        views.scene,
        views.category,
    )


def check_request(inputs: Views, path: Cameras, max_input_views: int) -> None:
    """Errors a user can fix, checked before any model is loaded or run."""
    if not 1 <= len(inputs) <= max_input_views:
        raise ValueError(
            f"{len(inputs)} input views given; this model takes 1 to {max_input_views}: pass fewer input frames"
        )
    for name, cams in (("path", path), ("input", inputs.cameras)):
        if not torch.isfinite(cams.c2w).all():
            raise ValueError(f"the {name} cameras contain NaN or inf poses; fix the camera file")
    centres, ahead = path.centers.double(), path.R[:, :, 2].double()
    if (
        len(path) > 1
        and torch.allclose(centres, centres[:1].expand_as(centres))
        and torch.allclose(ahead, ahead[:1].expand_as(ahead))
    ):
        raise ValueError("every camera of the path has the same pose; give a path that moves")


class PathNVSPipeline:
    """Generate the frames of a camera path from 1 to ``max_input_views`` posed input views.

    Example:
        >>> from camera.presets import orbit
        >>> from nvs.models.presets import preset_config
        >>> preset = preset_config("tiny")  # random weights (a trained one: PathNVSModel.from_pretrained(folder))
        >>> preset["settings"]["image_size"] = [32, 32]
        >>> pipe = PathNVSPipeline(PathNVSModel.from_preset(preset, {"name": "plucker"}))
        >>> cams = orbit(6, radius=2.0, elevation_deg=15.0, height=32, width=32).to(dtype=torch.float32)
        >>> inputs, path = Views(torch.rand(2, 3, 32, 32), cams[:2]), cams[2:]  # two posed views, four new poses
        >>> frames = pipe.generate(inputs, path, steps=2, guidance=1.0, seed=0)
        >>> frames.images.shape, len(frames.cameras)
        (torch.Size([4, 3, 32, 32]), 4)
    """

    def __init__(
        self,
        model: PathNVSModel,
        sampler: SamplerSettings | None = None,
        camera_radius: float | None = 1.5,
        chunking: str | None = None,
        memory: str | MemoryMode = "default",
    ) -> None:
        self.model = model
        self.sampler = sampler or SamplerSettings()
        self.stepper = self.sampler.make_sampler()  # the Sampler object (Euler, Heun) of the settings' method
        self.camera_radius = camera_radius
        self.chunking = check_strategy(chunking or model.settings.chunking)  # long paths; default: the model's
        self.memory = memory_mode(memory)  # a MemoryMode object (nvs.memory), given or by name
        self._device = self.memory.place(model)  # the execution device; None: the model's own

    @property
    def device(self) -> torch.device:
        """Where the model's parts run (in the low memory mode they wait on the CPU in between)."""
        return self._device if self._device is not None else self.model.device

    def running(self, *parts: str):
        """A context inside which the named parts (:data:`nvs.memory.PARTS`) run on :attr:`device`."""
        return self.memory.running(self.model, parts, self.device)

    def _normalized(self, inputs: Cameras, targets: Cameras) -> tuple[Cameras, Cameras]:
        if self.camera_radius is None:
            return inputs, targets
        _, transform = Cameras.cat([inputs, targets.resize(inputs.height, inputs.width)]).normalize_scene(
            self.camera_radius
        )
        return inputs.transform(transform), targets.transform(transform)

    def check(self, inputs: Views, path: Cameras) -> None:
        """Errors a user can fix, raised before any work (see :func:`check_request`)."""
        check_request(inputs, path, self.model.settings.max_input_views)

    # ------------------------------------------------------------------ generation
    def _settings(self, steps: int | None, guidance: Guidance | float | None) -> tuple[Tensor, Guidance]:
        return self.sampler.sigmas(steps), Guidance.of(self.sampler.guidance if guidance is None else guidance)

    def _one_pass(
        self,
        images: Tensor,
        input_cams: Cameras,
        target_cams: Cameras,
        sigmas: Tensor,
        guidance: Guidance,
        generator: torch.Generator,
        progress: bool,
        x_start: Tensor | None = None,
    ) -> Tensor:
        """images [V, 3, H, W] + cameras -> generated frames [F, 3, H, W]."""
        model = self.model
        h, w = model.settings.latent_size
        dev = self.device
        cond_inputs = ConditioningInputs(
            input_images=images[None].to(dev, torch.float32),
            input_cameras=input_cams.to(dev, torch.float32),
            target_cameras=target_cams.to(dev, torch.float32),
            latent_size=(h, w),
        )
        with torch.no_grad():
            with (
                self.running("image_encoder", "vae_encoder", "conditioner"),
                tqdm(total=len(images), desc="encoding", unit="view", disable=not progress, leave=False) as bar,
            ):
                cond = model.condition(cond_inputs, generator=generator)
                bar.update(len(images))
            shape = (1, len(target_cams), 4, h, w)
            with self.running("unet"):
                latents = sample(
                    model, cond, shape, sigmas, guidance, generator, self.stepper, x_start=x_start, progress=progress
                )
            with self.running("vae_decoder"):
                return model.decode_latents(latents, progress=progress)[0].cpu()

    def generate(
        self,
        inputs: Views,
        path: Cameras,
        steps: int | None = None,
        guidance: Guidance | float | None = None,
        seed: int = 0,
        progress: bool = False,
    ) -> Views:
        """Frames [T, 3, H, W] along ``path`` (any length; long paths are chunked, see
        :mod:`nvs.chunking`), returned as Views with the path's cameras at the model's image size."""
        self.check(inputs, path)
        settings = self.model.settings
        height, width = settings.image_size
        inputs = resize_views(inputs, height, width)
        path = path.resize(height, width)
        plan = plan_chunks(len(path), len(inputs), settings.num_frames, settings.max_input_views, self.chunking)
        input_cams, path_cams = self._normalized(inputs.cameras, path)
        sigmas, guidance = self._settings(steps, guidance)
        generator = torch.Generator().manual_seed(seed)

        def generate_chunk(chunk: Chunk, anchor_frames: Tensor | None) -> Tensor:
            images = inputs.images[list(chunk.inputs)]
            cams = input_cams[list(chunk.inputs)]
            if anchor_frames is not None:
                images = torch.cat([images, anchor_frames])
                cams = Cameras.cat([cams, path_cams[list(chunk.anchors)]])
            return self._one_pass(images, cams, path_cams[list(chunk.frames)], sigmas, guidance, generator, progress)

        frames = run_chunks(plan, generate_chunk, len(path), progress)
        return Views(
            frames,
            path.to(dtype=torch.float32),
            frame_ids=list(range(len(path))),
            scene=inputs.scene,
            category=inputs.category,
        )

    def sdedit(
        self,
        frames: Tensor,
        cameras: Cameras,
        inputs: Views,
        sigma: float,
        steps: int,
        guidance: Guidance | float | None = None,
        seed: int = 0,
        progress: bool = False,
    ) -> Tensor:
        """Refine frames [F, 3, H, W] in [0, 1] seen by ``cameras``: noise their latents to ``sigma``
        and denoise along a Karras schedule from ``sigma`` to ``sigma_min`` (``steps`` steps),
        conditioned on ``inputs``. Frames beyond the model's frame count go in consecutive chunks.
        Returns frames [F, 3, H, W] at the frames' size."""
        if frames.ndim != 4 or frames.shape[1] != 3 or frames.shape[0] != len(cameras):
            raise ValueError(
                f"sdedit expects frames [F, 3, H, W] with one camera each, got {tuple(frames.shape)} "
                f"and {len(cameras)} cameras"
            )
        if not self.sampler.sigma_min < sigma:
            raise ValueError(f"sigma must exceed sigma_min={self.sampler.sigma_min}, got {sigma}")
        self.check(inputs, cameras)
        settings = self.model.settings
        height, width = settings.image_size
        out_h, out_w = frames.shape[-2:]
        inputs = resize_views(inputs, height, width)
        view = resize_views(Views(frames.clamp(0, 1), cameras.to(dtype=torch.float32)), height, width)
        input_cams, target_cams = self._normalized(inputs.cameras, view.cameras)
        sigmas = self.sampler.sigmas(steps, sigma_max=sigma)
        guidance = Guidance.of(self.sampler.guidance if guidance is None else guidance)
        generator = torch.Generator().manual_seed(seed)
        with torch.no_grad(), self.running("vae_encoder"):
            latents = self.model.encode_images(view.images.to(self.device)).float()
        chunks, n = [], settings.num_frames
        for start in tqdm(range(0, len(view), n), desc="sdedit chunks", disable=not progress):
            idx = list(range(start, min(start + n, len(view))))
            chunks.append(
                self._one_pass(
                    inputs.images,
                    input_cams,
                    target_cams[idx],
                    sigmas,
                    guidance,
                    generator,
                    progress,
                    x_start=latents[idx][None],
                )
            )
        out = torch.cat(chunks)
        if (out_h, out_w) != (height, width):
            out = F.interpolate(out, size=(out_h, out_w), mode="bilinear", antialias=True, align_corners=False).clamp(
                0, 1
            )
        return out

    def orbit(
        self,
        image: Tensor,
        preset: str = "v3d",
        elevation_deg: float = 0.0,
        steps: int | None = None,
        guidance: Guidance | float | None = None,
        seed: int = 0,
        progress: bool = False,
    ) -> Views:
        """One image [3, H, W] in [0, 1] -> V3D's 18-frame orbit (``v3d``) or IM-3D's 16 (``im3d``,
        at ``elevation_deg``); the image is taken from the first orbit pose."""
        from camera.presets import im3d_orbit, v3d_orbit

        if image.ndim != 3 or image.shape[0] != 3:
            raise ValueError(f"orbit expects one image [3, H, W], got {tuple(image.shape)}")
        height, width = self.model.settings.image_size
        if preset == "v3d":
            path = v3d_orbit(height, width)
        elif preset == "im3d":
            path = im3d_orbit(elevation_deg, height=height, width=width)
        else:
            raise ValueError(f"unknown orbit preset {preset!r}; use 'v3d' (18 frames) or 'im3d' (16 frames)")
        image = F.interpolate(
            image[None].float(), size=(height, width), mode="bilinear", antialias=True, align_corners=False
        ).clamp(0, 1)
        inputs = Views(image, path[0].to(dtype=torch.float32), frame_ids=["input"])
        return self.generate(inputs, path, steps, guidance, seed, progress)
