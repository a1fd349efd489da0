"""The tables of ``benchmarks/generation.py``, printed from its result dict (``generation.json``)."""

from __future__ import annotations

import math

PARTS = ("clip", "vae_encode", "conditioner", "unet", "vae_decode", "other")


def _f(value, spec: str = ".3f", missing: str = "-") -> str:
    if value is None:
        return missing
    if isinstance(value, float) and math.isinf(value):
        return "inf"
    return format(value, spec)


def _shares(gen: dict) -> str:
    shares = gen.get("shares", {})
    return " ".join(f"{_f(shares.get(p, 0.0) * 100, '.0f'):>4}" for p in PARTS)


def best_mode(result: dict) -> tuple[str | None, dict | None]:
    """The fastest speed mode (per generation) whose frames keep the PSNR target against eager."""
    target = result["targets"]["psnr_db"]
    best = None
    for name, row in result.get("speed", {}).items():
        if "generate" not in row:
            continue
        psnr = row.get("frames_vs_eager", {}).get("psnr_db", math.inf)
        if psnr >= target and (best is None or row["generate"]["seconds"] < best[1]["generate"]["seconds"]):
            best = (name, row)
    return best or (None, None)


def target_lines(result: dict) -> list[str]:
    t, ref = result["targets"], result.get("reference", {})
    name, row = best_mode(result)
    lines = []
    if row is not None:
        step, gen = row["step_s"], row["generate"]["seconds"]
        ok = "met" if step <= t["step_s"] else "missed"
        lines.append(f"U-Net step <= {t['step_s']} s: {ok} ({name}: {step:.4f} s)")
        if ref.get("step_s"):
            ratio = ref["step_s"] / step
            ok = "met" if ratio >= t["step_speedup"] else "missed"
            lines.append(f">= {t['step_speedup']}x diffusers' eager U-Net: {ok} ({ratio:.2f}x)")
        lines.append(
            f"generation <= {t['generate_s']} s: {'met' if gen <= t['generate_s'] else 'missed'} ({gen:.2f} s)"
        )
    for name, row in result.get("speed", {}).items():
        psnr = row.get("frames_vs_eager", {}).get("psnr_db")
        if psnr is not None:
            lines.append(f"{name} frames vs eager >= {t['psnr_db']} dB: {'met' if psnr >= t['psnr_db'] else 'missed'}")
    for r in result.get("memory", []):
        limit = t["low_gib"].get(r["frames"]) if r["memory"] != "default" else None
        if limit is not None and r.get("peak_gib") is not None:
            ok = "met" if r["peak_gib"] <= limit else "missed"
            lines.append(f"memory={r['memory']} {r['frames']} frames <= {limit} GiB: {ok} ({r['peak_gib']:.1f} GiB)")
    return lines


def print_tables(result: dict) -> None:
    print(
        f"\ndevice: {result.get('device')}; torch {result.get('torch')}, diffusers {result.get('diffusers')}; "
        f"U-Net {_f((result.get('unet_parameters') or 0) / 1e9)} B parameters, "
        f"{_f(result.get('tflop_per_step'), '.1f')} TFLOP per guided step; B=2 x {result.get('frames')} frames x "
        f"{result.get('size')}², {result.get('steps')} steps, {result.get('conditioning')} conditioning"
    )
    ref, speed = result.get("reference", {}), result.get("speed", {})
    print(
        f"\n{'step':<16} {'first s':>8} {'s/step':>8} {'TFLOP/s':>8} {'x diff.':>7} {'max|d|':>9} {'rel d':>9}"
        f" {'GiB':>6}"
    )
    if ref.get("step_s"):
        print(f"{'diffusers U-Net':<16} {'-':>8} {ref['step_s']:>8.4f} {'-':>8} {1.0:>7.2f}")
    for name, row in speed.items():
        if "step_s" not in row:
            print(f"{name:<16} no step measured (see the stages line)")
            continue
        print(
            f"{name:<16} {row['first_call_s']:>8.1f} {row['step_s']:>8.4f} {row['tflops']:>8.1f} "
            f"{_f(row.get('speedup_vs_diffusers_step'), '.2f'):>7} {_f(row.get('step_max_abs_diff'), '.2e'):>9} "
            f"{_f(row.get('step_rel_diff'), '.2e'):>9} {_f(row.get('step_peak_gib'), '.1f'):>6}"
        )
    print(
        f"\n{'generation':<16} {'s':>6} {'x diff.':>7}  % {' '.join(f'{p[:4]:>4}' for p in PARTS)} {'GiB':>6} "
        f"{'PSNR':>6} {'max|d|':>7} {'lat. d':>8}"
    )
    rows = ([("diffusers SVD", ref["generate"], {})] if "generate" in ref else []) + [
        (name, row["generate"], row) for name, row in speed.items() if "generate" in row
    ]
    for name, gen, row in rows:
        vs = row.get("frames_vs_eager", {})
        print(
            f"{name:<16} {gen['seconds']:>6.2f} {_f(row.get('speedup_vs_diffusers_generate'), '.2f'):>7}    "
            f"{_shares(gen)} {_f(gen.get('peak_gib'), '.1f'):>6} {_f(vs.get('psnr_db'), '.1f'):>6} "
            f"{_f(vs.get('max_abs_diff'), '.4f'):>7} {_f(row.get('latents_rel_diff'), '.1e'):>8}"
        )
    for key, value in result.get("noise_floor", {}).items():
        print(f"noise floor {key}: PSNR {_f(value['psnr_db'], '.1f')} dB, max |d| {value['max_abs_diff']:.4f}")
    if "ours_vs_diffusers_step" in ref:
        d = ref["ours_vs_diffusers_step"]
        print(f"ours vs diffusers, one denoiser step: max |d| {d['max_abs_diff']:.2e}, relative {d['rel_diff']:.2e}")
    if result.get("memory"):
        print(f"\n{'memory':<10} {'frames':>6} {'size':>9} {'s':>7} {'peak GiB':>9} {'PSNR vs first mode':>18}")
        for r in result["memory"]:
            size = f"{r['height']}x{r['width']}"
            extra = f"  {r['error']}" if "error" in r else ""
            vs = r.get("frames_vs_first_mode", {}).get("psnr_db")
            print(
                f"{r['memory']:<10} {r['frames']:>6} {size:>9} {_f(r.get('seconds'), '.2f'):>7} "
                f"{_f(r.get('peak_gib'), '.1f'):>9} {_f(vs, '.1f'):>18}{extra}"
            )
    if "long" in result:
        r = result["long"]
        print(
            f"\nlong path: {r['frames']} frames in {r['passes']} passes ({r['chunking']}, speed {r['speed']}): "
            f"{r['seconds']:.1f} s, peak {_f(r.get('peak_gib'), '.1f')} GiB"
        )
    full = result.get("preset") == "svd"
    print("\ntargets" + (":" if full else " (met or missed at full size only; these are --quick numbers):"))
    for line in target_lines(result):
        print(f"  {line}")
    print(
        "\nstages: "
        + "; ".join(
            f"{k} {v.get('status')} ({_f(v.get('seconds'), '.0f')} s)" for k, v in result.get("stages", {}).items()
        )
    )
