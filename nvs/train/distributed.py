"""Data-parallel training under ``torchrun``: process group, model wrapping, full state dicts.

- :func:`init_distributed` reads torchrun's environment (``RANK``, ``WORLD_SIZE``, ``LOCAL_RANK``,
  ``MASTER_ADDR``/``MASTER_PORT``) and starts gloo on CPU or NCCL on CUDA; without it, one process.
- :func:`wrap` gives DDP (gradients averaged over ranks, so equal local batches make the
  gradient of the joined batch) or FSDP2 on the U-Net only (``fully_shard`` on every down / up
  block, then on the U-Net; its parameters, gradients and optimizer state sharded). The VAE,
  CLIP and conditioner stay replicated; the trainer averages the conditioner's gradients.
- :func:`full_state_dict` / :func:`load_full_state_dict` give every rank the unsharded tensors,
  so checkpoints are the same files whatever the wrapping; only rank 0 writes them.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import torch
import torch.distributed as dist
from torch import nn


@dataclass(frozen=True)
class DistInfo:
    rank: int = 0
    world_size: int = 1
    local_rank: int = 0
    device: torch.device = torch.device("cpu")

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    @property
    def enabled(self) -> bool:
        return self.world_size > 1


def init_distributed(device: str = "auto") -> DistInfo:
    """One process, or the torchrun group (gloo on CPU, NCCL on CUDA). ``device``: auto/cpu/cuda."""
    if device not in ("auto", "cpu", "cuda"):
        raise ValueError(f"device must be auto, cpu or cuda, got {device!r}")
    use_cuda = torch.cuda.is_available() if device == "auto" else device == "cuda"
    if use_cuda and not torch.cuda.is_available():
        raise RuntimeError("trainer.device=cuda but CUDA is not available: use trainer.device=cpu or auto")
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world <= 1:
        return DistInfo(device=torch.device("cuda", torch.cuda.current_device()) if use_cuda else torch.device("cpu"))
    rank, local = int(os.environ["RANK"]), int(os.environ.get("LOCAL_RANK", "0"))
    if use_cuda:
        torch.cuda.set_device(local)
    if not dist.is_initialized():
        dist.init_process_group(
            "nccl" if use_cuda else "gloo",
            rank=rank,
            world_size=world,
            device_id=torch.device("cuda", local) if use_cuda else None,
        )
    return DistInfo(rank, world, local, torch.device("cuda", local) if use_cuda else torch.device("cpu"))


def barrier(info: DistInfo) -> None:
    if info.enabled:
        dist.barrier()


def all_mean(value: torch.Tensor, info: DistInfo) -> torch.Tensor:
    """Mean of a tensor over ranks (for logging)."""
    if not info.enabled:
        return value
    out = value.detach().clone()
    dist.all_reduce(out)
    return out / info.world_size


def wrap(
    module: nn.Module,
    info: DistInfo,
    mode: str = "ddp",
    unet: nn.Module | None = None,
    find_unused_parameters: bool = False,
) -> nn.Module:
    """``module`` for data-parallel training: unchanged on one process, else DDP or FSDP2.

    FSDP shards ``unet`` (a diffusers U-Net inside ``module``) in place and returns ``module``
    itself: gradients of parameters outside the U-Net must be averaged by the caller.
    """
    if mode not in ("ddp", "fsdp"):
        raise ValueError(f"trainer.parallel must be 'ddp' or 'fsdp', got {mode!r}")
    if not info.enabled:
        return module
    if mode == "ddp":
        from torch.nn.parallel import DistributedDataParallel

        ids = [info.local_rank] if info.device.type == "cuda" else None
        return DistributedDataParallel(module, device_ids=ids, find_unused_parameters=find_unused_parameters)
    from torch.distributed.fsdp import fully_shard

    if unet is None:
        raise ValueError("FSDP wrapping needs the U-Net to shard its blocks")
    # The mid block returns a view, which FSDP2 cannot hook safely: it stays in the U-Net's root group.
    for block in [*unet.down_blocks, *unet.up_blocks]:
        fully_shard(block)
    fully_shard(unet)
    return module


def average_replicated_grads(params, info: DistInfo) -> None:
    """Average over ranks the gradients of parameters FSDP does not shard (plain tensors)."""
    from torch.distributed.tensor import DTensor

    for p in params:
        if p.grad is not None and not isinstance(p, DTensor):
            dist.all_reduce(p.grad)
            p.grad /= info.world_size


def plain_class(module: nn.Module) -> type:
    """The module's own class (``fully_shard`` swaps in an ``FSDP<Class>`` subclass)."""
    from torch.distributed.fsdp import FSDPModule

    return next(c for c in type(module).__mro__ if not issubclass(c, FSDPModule))


def is_sharded(module: nn.Module) -> bool:
    from torch.distributed.tensor import DTensor

    return any(isinstance(p, DTensor) for p in module.parameters())


def full_state_dict(module: nn.Module) -> dict[str, torch.Tensor]:
    """Unsharded CPU copy of ``module.state_dict()`` (collective under FSDP: call on every rank)."""
    from torch.distributed.tensor import DTensor

    out = {}
    for name, t in module.state_dict().items():
        t = t.full_tensor() if isinstance(t, DTensor) else t
        out[name] = t.detach().to("cpu", copy=True).contiguous()
    return out


def load_full_state_dict(module: nn.Module, state: dict[str, torch.Tensor]) -> None:
    """Load unsharded tensors, re-sharding where ``module`` holds DTensors."""
    from torch.distributed.tensor import DTensor, distribute_tensor

    own = module.state_dict()
    missing, unexpected = sorted(set(own) - set(state)), sorted(set(state) - set(own))
    if missing or unexpected:
        raise ValueError(
            f"checkpoint does not fit the model: missing {missing[:5]}, unexpected {unexpected[:5]}: "
            "resume with the same model and conditioning config"
        )
    with torch.no_grad():
        for name, target in own.items():
            value = state[name]
            if isinstance(target, DTensor):
                value = distribute_tensor(value.to(target.device, target.dtype), target.device_mesh, target.placements)
                target.to_local().copy_(value.to_local())
            else:
                target.copy_(value)
