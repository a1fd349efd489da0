"""A dispatch mode that fails on every op that reads a tensor's values on the host: the CPU proxy
for "this code never waits for the GPU" (``.item()``, ``bool(t)``, ``int(t)``, ``if torch.any(t)``,
boolean-mask indexing, ``torch.equal``), and on tensors built from host data inside the region
(``torch.tensor([...])``: a host-to-device copy on a GPU, which a CUDA graph cannot replay). A
Python number assigned into a tensor becomes a 0-dim host tensor: into a slice (``x[:, 0] = 1``)
PyTorch fills with it (a kernel argument: allowed), into one element (``x[0] = 1``, a 0-dim
destination) it copies it (a host-to-device copy on a GPU: refused; found by a failed capture)."""

from __future__ import annotations

import torch
from torch.utils._python_dispatch import TorchDispatchMode

aten = torch.ops.aten
HOST_READS = {
    aten._local_scalar_dense.default,  # .item(), float(t), int(t), bool(t)
    aten.is_nonzero.default,  # bool(t) of a one-element tensor
    aten.nonzero.default,  # torch.nonzero, torch.where(cond) with one argument (boolean indexing: INDEXING)
    aten.equal.default,  # torch.equal
    aten.masked_select.default,
    aten.item.default,
}
INDEXING = {aten.index.Tensor, aten.index_put.default, aten.index_put_.default, aten._index_put_impl_.default}
LIFT = aten.lift_fresh.default  # torch.tensor(python data); 0-dim: a Python number (x[i] = 1), a kernel argument


class HostReadError(AssertionError):
    pass


class NoHostReads(TorchDispatchMode):
    """``with NoHostReads(): ...`` raises :class:`HostReadError` naming the first host read."""

    def __init__(self) -> None:
        super().__init__()
        self.numbers: set[int] = set()  # ids of the 0-dim tensors lifted from Python numbers

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        masks = func in INDEXING and any(i is not None and i.dtype == torch.bool for i in args[1])
        element = func is aten.copy_.default and args[0].ndim == 0 and id(args[1]) in self.numbers
        if func in HOST_READS or masks or element or (func is LIFT and args[0].ndim > 0):
            raise HostReadError(f"{func} reads tensor values on the host (or builds a tensor from host data)")
        out = func(*args, **(kwargs or {}))
        if func is LIFT:
            self.numbers.add(id(out))
        return out


PROFILED_READS = (
    "aten::_local_scalar_dense",
    "aten::nonzero",
    "aten::is_nonzero",
    "aten::equal",
    "aten::masked_select",
)


def profiled_host_reads(fn) -> list[str]:
    """The host reads of ``fn()`` seen by the profiler, with their calling op: also those inside
    ATen (e.g. a backward formula's ``.item()``), which a dispatch mode hides since aten takes
    its tensor-subclass path under one. Reads inside the CPU fused AdamW are left out: it reads
    its step counter from the host there, where the CUDA kernel reads it on the device."""
    from torch.profiler import ProfilerActivity, profile

    with profile(activities=[ProfilerActivity.CPU]) as prof:
        fn()
    found = []
    for event in prof.events():
        if event.name not in PROFILED_READS:
            continue
        chain, parent = [], event.cpu_parent
        while parent is not None:
            chain.append(parent.name)
            parent = parent.cpu_parent
        if "aten::_fused_adamw_" not in chain:
            found.append(" <- ".join([event.name, *chain[:3]]))
    return found
