import torch

from nvs.data.synthetic.primitives import (
    BOX,
    CONE,
    CYLINDER,
    KIND_NAMES,
    SPHERE,
    canonical_normal,
    inside_canonical,
    intersect_canonical,
    sample_canonical,
)


def _rays(n: int, seed: int):
    g = torch.Generator().manual_seed(seed)
    o = torch.randn(n, 3, generator=g, dtype=torch.float64)
    o = 3.5 * o / o.norm(dim=-1, keepdim=True)
    target = 0.8 * (torch.rand(n, 3, generator=g, dtype=torch.float64) * 2 - 1)
    return o, target - o  # not unit: t is in units of |d|


def test_hits_match_a_brute_force_march_through_the_inside_test():
    o, d = _rays(200, 0)
    t_grid = torch.linspace(0, 2, 4001, dtype=torch.float64)
    step = float(t_grid[1])
    for kind in range(len(KIND_NAMES)):
        t = intersect_canonical(kind, o[:, None], d[:, None])[:, 0]
        inside = inside_canonical(kind, o[:, None] + t_grid[None, :, None] * d[:, None], margin=0.0)
        entered = inside.any(-1)
        first = torch.where(entered, t_grid[inside.float().argmax(-1)], torch.full_like(t, float("inf")))
        both = entered & torch.isfinite(t)
        assert (torch.isfinite(t) == entered).float().mean() > 0.98  # grazing rays may fall between march steps
        assert ((t[both] - first[both]).abs() <= step + 1e-9).all(), KIND_NAMES[kind]


def test_samples_lie_on_the_surface_with_outward_normals():
    g = torch.Generator().manual_seed(0)
    for kind in (SPHERE, BOX, CYLINDER, CONE):
        p = sample_canonical(kind, 500, g)
        n = canonical_normal(torch.full((500,), kind), p)
        n = n / n.norm(dim=-1, keepdim=True)
        assert not inside_canonical(kind, p, margin=1e-6).any()
        assert inside_canonical(kind, p - 1e-3 * n, margin=0.0).all(), KIND_NAMES[kind]
