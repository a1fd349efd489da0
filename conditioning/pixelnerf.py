"""PixelNeRF conditioner (V3D's scene case): feature maps rendered at every target pose.

Per scene, the cameras are normalised (recentred at the mean camera centre, farthest camera at
``scene_radius``, V3D: 1.5). Every target pixel at latent resolution casts a ray; samples
between its entry and exit of the box [-1, 1]^3 are projected into every input view, the
encoder's features are looked up bilinearly, aggregated over the views that see the sample
(masked mean + variance, or a small attention), encoded with the sample's position by an MLP
into a density logit and features, and composited along the ray. A decoder maps each pixel's
features to RGB (sigmoid, the auxiliary branch trained against the downsampled target) and
``map_channels`` conditioning channels (V3D: 128). Rays are processed in chunks, so memory
grows with ``chunk_size`` x samples x views, not with the number of target pixels.

Two options, off by default (V3D has neither): ``background_samples`` adds samples beyond the
box exit, uniform in disparity out to ``background_far``, and then encodes every sample's
contracted position (mip-NeRF 360), so walls and floors outside the box get geometry instead of
one learned background feature; ``rgb_mode="blend"`` takes each sample's colour as a learned
softmax blend of the input colours at its projections (IBRNet) and fills only what no view sees
(and the background share) with the decoded colour, which keeps the input views' detail.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import Literal

import torch
import torch.nn.functional as F
from diffusers.configuration_utils import register_to_config
from torch import Tensor, nn
from torch.utils.checkpoint import checkpoint

from camera.cameras import Cameras
from camera.rays import ray_bundle
from camera.scene_normalization import apply_similarity, scene_similarity
from conditioning.base import Conditioner, ConditioningInputs, ConditioningOutput
from conditioning.encoder import ResNetEncoder
from conditioning.render import (
    compositing_weights,
    contract,
    lookup_features,
    masked_mean_var,
    positional_encoding,
    project_points,
    ray_box_bounds,
    sample_along_rays,
    sample_in_disparity,
)


def _geometry_precision(like: Tensor):
    """Camera geometry (ray directions, projections) in float32 even under bf16 autocast: a bf16
    matmul would round pixel coordinates of a 128-pixel image by up to half a pixel."""
    return torch.autocast(like.device.type, enabled=False)


def normalize_scene_cameras(
    input_cameras: Cameras,  # B*V, scene-major
    target_cameras: Cameras,  # B*F, scene-major
    num_scenes: int,
    radius: float = 1.5,
    use: Literal["all", "inputs"] = "all",
) -> tuple[Cameras, Cameras]:
    """Per scene, the similarity (``Cameras.normalize_scene``) that puts the mean camera centre at
    the origin and the farthest camera at ``radius``, computed from the input cameras only
    (``use="inputs"``) or from inputs and targets (``"all"``), applied to both sets.

    ``"all"`` is the default of the conditioner: a single input view, or a few neighbouring
    ones, have a mean centre next to the cameras instead of at the scene, which puts the box
    [-1, 1]^3 around the cameras; the target path spreads the cameras around the scene.
    """
    if use not in ("all", "inputs"):
        raise ValueError(f"normalize_with must be 'all' or 'inputs', got {use!r}")
    centers = input_cameras.centers.unflatten(0, (num_scenes, -1))
    if use == "all":
        centers = torch.cat([centers, target_cameras.centers.unflatten(0, (num_scenes, -1)).to(centers)], 1)
    scale, translation = scene_similarity(centers, radius)  # all scenes at once (camera.scene_normalization)
    return apply_similarity(input_cameras, scale, translation), apply_similarity(target_cameras, scale, translation)


class PixelNeRFConditioner(Conditioner):
    """Renders [B, F, map_channels, h, w] feature maps and a [B, F, 3, h, w] RGB preview.

    Args:
        map_channels: conditioning channels given to the U-Net (V3D: 128).
        encoder_blocks, encoder_width, encoder_channels: the ResNet encoder (V3D: ResNet-34 =
            (3, 4, 6, 3), width 64, 64 channels at 1/4 resolution).
        pretrained_path: a torchvision ResNet state dict the encoder starts from (None: from
            scratch). Not part of the config: a saved conditioner loads without the file.
        num_samples: samples per ray (V3D: 128).
        hidden_channels, mlp_layers: the per-sample MLP.
        pe_freqs: positional-encoding frequencies of the sample position.
        aggregation: ``"mean_var"`` or ``"attention"`` (learned per-view weights + variance).
        compositing: ``"alpha"`` (softplus density, NeRF compositing) or ``"softmax"`` (V3D).
        scene_radius: distance of the farthest camera after normalisation (V3D: 1.5).
        normalize_with: ``"all"`` cameras or the ``"inputs"`` only (see normalize_scene_cameras).
        box_half_width: samples lie in the box [-box_half_width, box_half_width]^3 (V3D: 1).
        sample_colors: also look up the input images' RGB at each projection (beside the
            encoder features; not in V3D's code, it speeds up learning colours a lot).
        near_far_fallback: bounds of rays that miss the box [-1, 1]^3.
        background_samples: extra samples per ray between its box exit and ``background_far``,
            uniform in disparity; when > 0 every sample's position is contracted (radius
            ``box_half_width``) before the positional encoding (0: V3D, box samples only).
        background_far: distance where the background samples end (scene-normalised units).
        rgb_mode: ``"decode"`` (V3D: RGB decoded from the composited features) or ``"blend"``:
            per sample, a softmax over the views that see it (scores from each view's values
            and their difference from the mean) blends the input colours; the pixel's RGB is
            sum_s w_s seen_s blend_s + (1 - sum_s w_s seen_s) decoded, w the compositing
            weights, seen_s whether any view sees sample s. Needs ``sample_colors``.
        chunk_size: rays rendered at once, over all scenes of the batch.
        gradient_checkpointing: recompute each chunk in the backward pass when training.
        rgb_loss: ``"l2"`` or ``"l1"`` for ``losses["pixelnerf_rgb"]``.
    """

    name = "pixelnerf"
    ignore_for_config = ["pretrained_path"]  # an initialisation, superseded by the saved weights

    @register_to_config
    def __init__(
        self,
        map_channels: int = 128,
        encoder_blocks: Sequence[int] = (3, 4, 6, 3),
        encoder_width: int = 64,
        encoder_channels: int = 64,
        pretrained_path: str | os.PathLike | None = None,
        num_samples: int = 64,
        hidden_channels: int = 128,
        mlp_layers: int = 3,
        pe_freqs: int = 6,
        aggregation: Literal["mean_var", "attention"] = "mean_var",
        compositing: Literal["alpha", "softmax"] = "alpha",
        scene_radius: float = 1.5,
        normalize_with: Literal["all", "inputs"] = "all",
        box_half_width: float = 1.0,
        sample_colors: bool = True,
        near_far_fallback: Sequence[float] = (0.1, 4.0),
        background_samples: int = 0,
        background_far: float = 16.0,
        rgb_mode: Literal["decode", "blend"] = "decode",
        chunk_size: int = 8192,
        gradient_checkpointing: bool = True,
        rgb_loss: Literal["l2", "l1"] = "l2",
    ) -> None:
        super().__init__()
        if aggregation not in ("mean_var", "attention"):
            raise ValueError(f"aggregation must be 'mean_var' or 'attention', got {aggregation!r}")
        if compositing not in ("alpha", "softmax"):
            raise ValueError(f"compositing must be 'alpha' or 'softmax', got {compositing!r}")
        if rgb_loss not in ("l2", "l1"):
            raise ValueError(f"rgb_loss must be 'l2' or 'l1', got {rgb_loss!r}")
        if normalize_with not in ("all", "inputs"):
            raise ValueError(f"normalize_with must be 'all' or 'inputs', got {normalize_with!r}")
        if num_samples < 1 or chunk_size < 1 or map_channels < 0:
            raise ValueError("num_samples and chunk_size must be >= 1 and map_channels >= 0")
        if background_samples < 0 or not background_far > 0:
            raise ValueError(
                f"background_samples must be >= 0 and background_far > 0, got {background_samples} and {background_far}"
            )
        if rgb_mode not in ("decode", "blend"):
            raise ValueError(f"rgb_mode must be 'decode' or 'blend', got {rgb_mode!r}")
        if rgb_mode == "blend" and not sample_colors:
            raise ValueError("rgb_mode='blend' blends the input colours at each sample: it needs sample_colors=True")
        self.map_channels = map_channels
        self.num_samples = num_samples
        self.pe_freqs = pe_freqs
        self.aggregation = aggregation
        self.compositing = compositing
        self.scene_radius = scene_radius
        self.normalize_with = normalize_with
        self.box_half_width = box_half_width
        self.sample_colors = sample_colors
        self.near_far_fallback = (float(near_far_fallback[0]), float(near_far_fallback[1]))
        self.background_samples = background_samples
        self.background_far = float(background_far)
        self.rgb_mode = rgb_mode
        self.chunk_size = chunk_size
        self.gradient_checkpointing = gradient_checkpointing
        self.rgb_loss = rgb_loss

        self.encoder = ResNetEncoder(encoder_blocks, encoder_width, encoder_channels, pretrained_path)
        c = encoder_channels + 2 + (3 if sample_colors else 0)  # + depth in the view, cosine, RGB
        if aggregation == "attention":
            self.view_score = nn.Sequential(nn.Linear(2 * c, c), nn.ReLU(), nn.Linear(c, 1))
        if rgb_mode == "blend":  # the same kind of per-view score, for the colour blend
            self.blend_score = nn.Sequential(nn.Linear(2 * c, c), nn.ReLU(), nn.Linear(c, 1))
        in_dim = 2 * c + 3 * (1 + 2 * pe_freqs) + 1
        layers: list[nn.Module] = []
        for i in range(mlp_layers):
            layers += [nn.Linear(in_dim if i == 0 else hidden_channels, hidden_channels), nn.ReLU()]
        layers.append(nn.Linear(hidden_channels if mlp_layers else in_dim, 1 + hidden_channels))
        self.point_mlp = nn.Sequential(*layers)
        self.background = nn.Parameter(torch.zeros(hidden_channels))
        self.decoder = nn.Sequential(
            nn.Linear(hidden_channels, hidden_channels), nn.ReLU(), nn.Linear(hidden_channels, 3 + map_channels)
        )

    # ------------------------------------------------------------------ core
    @staticmethod
    def _view_weights(score: nn.Module, values: Tensor, mean: Tensor, visible: Tensor) -> Tensor:
        """Softmax over the views that see each point of ``score([values, values - mean])``:
        values [B, V, P, C], mean [B, P, C], visible [B, V, P] -> weights [B, V, P] (0 where unseen)."""
        scores = score(torch.cat([values, values - mean[:, None]], -1))[..., 0]  # [B, V, P]
        scores = scores.masked_fill(~visible, float("-inf"))
        return torch.softmax(scores, 1).nan_to_num(0.0)  # points seen by no view: all -inf -> 0

    def _aggregate(self, values: Tensor, visible: Tensor) -> tuple[Tensor, Tensor, Tensor, Tensor]:
        """values [B, V, P, C], visible [B, V, P] -> pooled [B, P, C], var [B, P, C], count [B, P],
        mean [B, P, C]."""
        mean, var, count = masked_mean_var(values, visible)
        if self.aggregation == "mean_var":
            return mean, var, count, mean
        weights = self._view_weights(self.view_score, values, mean, visible)
        return (weights[..., None] * values).sum(1), var, count, mean

    def _render_chunk(
        self,
        features: Tensor,  # [B*V, C, h4, w4]
        colors: Tensor | None,  # [B*V, 3, H, W] or None
        input_cameras: Cameras,  # B*V
        origins: Tensor,  # [B, c, 3]
        dirs: Tensor,  # [B, c, 3]
        t: Tensor,  # [B, c, S]
        far: Tensor,  # [B, c]
    ) -> tuple[Tensor, Tensor, Tensor, Tensor]:
        """-> rgb [B, c, 3], maps [B, c, map_channels], depth [B, c], opacity [B, c].

        ``t`` holds the box samples, then the background ones; ``far`` is where the last sample's
        compositing interval ends (the box exit, or ``background_far``)."""
        b, c, s = t.shape
        v = len(input_cameras) // b
        points = origins[:, :, None] + dirs[:, :, None] * t[..., None]  # [B, c, S, 3]
        flat = points.reshape(b, c * s, 3)
        with _geometry_precision(flat):
            grid, visible, depth_in = project_points(input_cameras, flat.float())
        # per-view cues: the sample's depth in the view and the cosine between the target ray and
        # the view's ray to the sample (how far the view is from the target direction)
        to_point = F.normalize(flat[:, None] - input_cameras.centers.reshape(b, v, 1, 3), dim=-1)  # [B, V, P, 3]
        cosine = (to_point * dirs.repeat_interleave(s, 1)[:, None]).sum(-1).flatten(0, 1)  # [B*V, P]
        parts = [lookup_features(features, grid), depth_in[..., None] / self.scene_radius, cosine[..., None]]
        if colors is not None:
            parts.append(lookup_features(colors, grid))
        values = torch.cat(parts, -1).reshape(b, v, c * s, -1)
        visible = visible.reshape(b, v, c * s)
        pooled, var, count, mean = self._aggregate(values, visible)
        position = flat if self.background_samples == 0 else contract(flat, self.box_half_width)
        pe = positional_encoding(position, self.pe_freqs)
        x = torch.cat([pooled, var, pe, (count / v)[..., None]], -1)
        out = self.point_mlp(x).reshape(b, c, s, -1)
        weights = compositing_weights(out[..., 0], t, far, self.compositing)  # [B, c, S]
        opacity = weights.sum(-1)
        feats = (weights[..., None] * out[..., 1:]).sum(2) + (1 - opacity)[..., None] * self.background
        depth = (weights * t).sum(-1) / opacity.clamp(min=1e-6)
        decoded = self.decoder(feats)
        rgb = torch.sigmoid(decoded[..., :3])
        if self.rgb_mode == "blend":  # the input colours are the last 3 channels of values
            view_w = self._view_weights(self.blend_score, values, mean, visible)  # [B, V, c*S]
            blend = (view_w[..., None] * values[..., -3:]).sum(1).reshape(b, c, s, 3)
            seen_w = weights * (count > 0).reshape(b, c, s).to(weights)  # [B, c, S]
            rgb = (seen_w[..., None] * blend).sum(2) + (1 - seen_w.sum(-1))[..., None] * rgb
        return rgb, decoded[..., 3:], depth, opacity

    def render(
        self,
        images: Tensor,  # [B, V, 3, H, W]
        input_cameras: Cameras,  # B*V, scene-normalised
        target_cameras: Cameras,  # B*F, scene-normalised
        height: int,
        width: int,
    ) -> tuple[Tensor, Tensor, Tensor, Tensor]:
        """Render every target at ``height x width``: maps [B, F, C, h, w], rgb [B, F, 3, h, w],
        depth [B, F, 1, h, w] (scene-normalised units), opacity [B, F, 1, h, w]."""
        b, v = images.shape[:2]
        f = len(target_cameras) // b
        features = self.encoder(images.flatten(0, 1))
        colors = images.flatten(0, 1) if self.sample_colors else None
        with _geometry_precision(images):
            origins, dirs = ray_bundle(target_cameras, height, width)  # [B*F, h, w, 3]
        origins, dirs = origins.reshape(b, -1, 3), dirs.reshape(b, -1, 3)
        near, far, _ = ray_box_bounds(origins, dirs, -self.box_half_width, self.box_half_width, self.near_far_fallback)
        t = sample_along_rays(near, far, self.num_samples, stratified=self.training)
        if self.background_samples > 0:  # from the box exit to background_far, uniform in disparity
            far = far.clamp(min=1e-6)
            end = far.clamp(min=self.background_far)
            t = torch.cat([t, sample_in_disparity(far, end, self.background_samples, self.training)], -1)
            far = end
        per_scene = max(1, self.chunk_size // b)
        chunks: list[tuple[Tensor, ...]] = []
        for start in range(0, origins.shape[1], per_scene):
            sl = slice(start, start + per_scene)
            args = (features, colors, input_cameras, origins[:, sl], dirs[:, sl], t[:, sl], far[:, sl])
            if self.training and self.gradient_checkpointing and torch.is_grad_enabled():
                # the chunk draws nothing at random: no generator state to stash (which a CUDA graph cannot)
                chunks.append(checkpoint(self._render_chunk, *args, use_reentrant=False, preserve_rng_state=False))
            else:
                chunks.append(self._render_chunk(*args))

        def grid(i: int) -> Tensor:  # output i of every chunk, [B, c(, C)] -> [B, F, C, h, w]
            x = torch.cat([chunk[i] for chunk in chunks], 1)
            return x.reshape(b, f, height, width, -1).permute(0, 1, 4, 2, 3)

        rgb, maps, depth, opacity = (grid(i) for i in range(4))
        return maps, rgb, depth, opacity

    def forward(self, inputs: ConditioningInputs) -> ConditioningOutput:
        b = inputs.num_scenes
        h, w = inputs.latent_size
        cams_in, cams_out = normalize_scene_cameras(
            inputs.input_cameras, inputs.target_cameras, b, self.scene_radius, self.normalize_with
        )
        images = inputs.input_images
        cams_in, cams_out = cams_in.to(images.device, images.dtype), cams_out.to(images.device, images.dtype)
        maps, rgb, depth, opacity = self.render(images, cams_in, cams_out, h, w)
        losses = {}
        if inputs.target_images is not None:
            target = F.interpolate(inputs.target_images.flatten(0, 1), size=(h, w), mode="area").reshape_as(rgb)
            err = rgb - target.to(rgb)
            losses["pixelnerf_rgb"] = (err**2).mean() if self.rgb_loss == "l2" else err.abs().mean()
        return ConditioningOutput(maps=maps, losses=losses, extras={"rgb": rgb, "depth": depth, "opacity": opacity})
