"""Full-size generation: speed modes and memory modes, side by side with diffusers' SVD pipeline (issue 14).

    python -m benchmarks.generation --out DIR [--stages reference,eager,compile,long,memory] [--quick]

The full-size random-weight model (preset ``svd``, 1.525 B-parameter U-Net, PixelNeRF conditioning)
in bf16 on one CUDA GPU. Stages run in the order given, each under its own time limit (``--limit
NAME=SECONDS``) and all within ``--budget``; ``generation.json`` is rewritten after each, so a stage
that times out keeps the others' results.

- ``reference``: diffusers' own ``UNetSpatioTemporalConditionModel`` holding the same weights (SVD's 8
  input channels; ours adds zero-initialised ones) for one guided step, and its
  ``StableVideoDiffusionPipeline`` for a whole generation: same image, noise, steps, guidance ramp, seed.
- a speed mode (``eager``, ``compile`` of nvs.models.speed, or a recipe of :data:`CANDIDATES`),
  on its own copy of the U-Net and VAE: one guided step B = 2 x 14 x 576² (first call, median, TFLOP/s,
  peak memory, difference from eager) and a whole 25-step generation with its stages' shares and its
  frames against eager (PSNR, max difference). ``eager`` also runs with the guidance batch split in two
  (the same math through other kernels): the bf16 noise floor that the 40 dB target is read against.
- ``long``: a 120-frame path with anchors (nvs.chunking) in ``--long-speed``: time, passes, peak memory.
- ``memory``: each memory mode of nvs.memory (``--memory-modes``) at 14 x 576² and 25 x 576x1024: time of a
  generation (the pipeline built beforehand) and its peak allocated memory, resident weights included.

``--quick``: the tiny preset on CPU at 32², a smoke test of every stage (compilation is left out on CPU).
"""

from __future__ import annotations

import argparse
import gc
import json
import signal
import time
import traceback
from contextlib import contextmanager
from dataclasses import replace
from pathlib import Path

import torch

from benchmarks import generation_parts as gp
from nvs.models.speed import SPEED_MODES, SpeedMode, speed_mode

TARGETS = {"step_s": 0.105, "step_speedup": 2.0, "generate_s": 3.5, "psnr_db": 40.0, "low_gib": {14: 16.0, 25: 24.0}}
_C = SPEED_MODES["compile"]
CANDIDATES: dict[str, SpeedMode] = {  # recipes tried here beside the shipped modes
    "compile-plain": SpeedMode(compile_unet=True, compile_vae=True),  # torch.compile alone
    "compile-cd": replace(_C, options={**_C.options, "coordinate_descent_tuning": True}),
    "compile-max": replace(_C, options={**_C.options, "max_autotune": True}),  # = max-autotune-no-cudagraphs
    "compile-cg": replace(_C, options={**_C.options, "triton.cudagraphs": True}),  # + CUDA graphs
    "compile-fp8": replace(_C, fp8=True),  # + float8 Linear products (torchao, per-row scales)
}
# seconds; others: 300. compile-fp8 was cut at 125 s while compiling (results/generation/README.md).
LIMITS = {"setup": 240, "reference": 120, "eager": 120, "memory": 200, "long": 150, "compile-fp8": 360}
FULL = {"frames": 14, "size": 576, "steps": 25, "long_frames": 120, "memory_sizes": [(14, 576, 576), (25, 576, 1024)]}
QUICK = {"frames": 4, "size": 32, "steps": 1, "long_frames": 7, "memory_sizes": [(4, 32, 32), (6, 32, 64)]}
GUIDANCE = (1.0, 3.0)  # SVD's per-frame ramp, what its pipeline uses by default


class StageTimeout(BaseException):
    """A stage's time limit. Not an Exception, so that library code catching Exception passes it on:
    Python's ``inspect.getfullargspec`` (called while Triton compiles a kernel) turns any Exception
    into ``TypeError('unsupported callable')``, which hid the first full run's fp8 stage timeout."""


@contextmanager
def time_limit(seconds: float):
    def expire(signum, frame):
        raise StageTimeout(f"ran past its {seconds:.0f} s limit")

    previous = signal.signal(signal.SIGALRM, expire)
    signal.alarm(max(1, int(seconds)))
    try:
        yield
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, previous)


def log(text: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {text}", flush=True)


class Bench:
    """The run's state: arguments, model, scene, eager references and the result dict."""

    def __init__(self, args: argparse.Namespace) -> None:
        self.args, self.size = args, QUICK if args.quick else FULL
        self.device = torch.device("cpu" if args.quick else "cuda")
        self.dtype = torch.float32 if args.quick else torch.bfloat16
        self.start = time.perf_counter()
        self.result: dict = {"targets": TARGETS, "stages": {}, "speed": {}, "memory": [], "noise_floor": {}}
        self.eager: dict = {}
        self.model = None

    def write(self) -> None:
        from camera.io import atomic_write_text

        atomic_write_text(self.args.out / "generation.json", json.dumps(self.result, indent=2, default=str) + "\n")

    def sampler(self, steps: int):
        from nvs.sampling import Guidance, SamplerSettings

        return SamplerSettings(steps=steps, guidance=Guidance(*GUIDANCE))

    def pipeline(self, model, steps: int, memory: str = "default"):
        """Our pipeline, built outside any timing (a memory mode places the parts when it is built)."""
        from nvs.pipeline import PathNVSPipeline

        return PathNVSPipeline(model, self.sampler(steps), memory=memory)

    def generate(self, pipe, inputs=None, path=None):
        inputs, path = (self.inputs, self.path) if inputs is None else (inputs, path)
        return pipe.generate(inputs, path, seed=0).images


# ---------------------------------------------------------------- stages
def setup(b: Bench) -> None:
    from torch.utils.flop_counter import FlopCounterMode

    from conditioning.base import ConditioningInputs
    from nvs.models import Condition

    a, s = b.args, b.size
    b.model = gp.build("tiny" if a.quick else "svd", a.conditioning, s["size"], b.device, b.dtype)
    b.inputs, b.path = gp.scene(s["frames"], s["size"])
    h, w = b.model.settings.latent_size
    with torch.no_grad():
        dev = b.device
        inputs = ConditioningInputs(b.inputs.images[None].to(dev), b.inputs.cameras.to(dev), b.path.to(dev), (h, w))
        cond = b.model.condition(inputs)
        b.both = Condition.cat([cond, cond.unconditional()])
        b.x = torch.randn(2, s["frames"], 4, h, w, device=b.device, dtype=b.dtype)
        b.sigma = torch.full((2,), 10.0, device=b.device)
        with FlopCounterMode(display=False) as counter:
            b.model.denoise(b.x, b.sigma, b.both)
    import diffusers

    name = torch.cuda.get_device_name() if b.device.type == "cuda" else f"CPU, {torch.get_num_threads()} threads"
    b.result.update(
        device=name,
        torch=torch.__version__,
        diffusers=diffusers.__version__,
        preset="tiny" if a.quick else "svd",
        conditioning=a.conditioning,
        frames=s["frames"],
        size=s["size"],
        steps=s["steps"],
        guidance=GUIDANCE,
        dtype=str(b.dtype).removeprefix("torch."),
        unet_parameters=sum(p.numel() for p in b.model.unet.parameters()),
        tflop_per_step=counter.get_total_flops() / 1e12,
    )


def reference(b: Bench) -> None:
    from nvs.models import edm

    a, s, m = b.args, b.size, b.model
    plain = gp.diffusers_unet(m.unet)
    out: dict = {}
    with torch.no_grad():
        sig = b.sigma[:, None, None, None, None]
        latent = b.both.latent[:, None].expand(-1, s["frames"], -1, -1, -1)
        sample = torch.cat([edm.c_in(sig) * b.x.float(), latent.float()], dim=2).to(b.dtype)
        args = (sample, edm.c_noise(b.sigma), b.both.clip.to(b.dtype), m.added_time_ids(2))

        def step():
            return plain(*args[:2], encoder_hidden_states=args[2], added_time_ids=args[3], return_dict=False)[0]

        out["step_s"], out["step_warmup_s"] = gp.time_steps(step, b.device, a.warmup, a.repeats)
        denoised = edm.c_skip(sig) * b.x.float() + edm.c_out(sig) * step().float()
        ours = m.denoise(b.x, b.sigma, b.both).float()
        out["ours_vs_diffusers_step"] = {"max_abs_diff": (ours - denoised).abs().max().item()}
        out["ours_vs_diffusers_step"]["rel_diff"] = gp.relative_difference(ours, denoised)
        pipe = gp.diffusers_pipeline(m, plain)
        image = b.inputs.images[0]
        gp.run_diffusers(pipe, image, m.settings, a.warmup_steps, GUIDANCE, 0)
        frames, out["generate"] = gp.timed_call(
            lambda: gp.run_diffusers(pipe, image, m.settings, s["steps"], GUIDANCE, 0),
            pipe,
            gp.DIFFUSERS_PARTS,
            b.device,
        )
    out["generate"].pop("kept")
    b.eager["diffusers_frames"] = frames
    b.result["reference"] = out


def speed(b: Bench, name: str) -> str:
    a = b.args
    recipe = SPEED_MODES.get(name) or CANDIDATES[name]
    row: dict = {"recipe": recipe.describe()}
    b.result["speed"][name] = row
    if a.quick and recipe.compiles:  # dynamo and inductor take minutes on a small CPU
        recipe = replace(recipe, compile_unet=False, compile_vae=False)
        row["recipe"] = recipe.describe() + " (--quick: not compiled)"
    if name != "eager" and "step_out" not in b.eager:
        raise RuntimeError("run the eager stage first: the other modes are compared with it")
    model = b.model if name == "eager" else gp.accelerated_copy(b.model, recipe)
    try:
        _speed_rows(b, name, model, row)
    finally:
        del model
        if recipe.compiles:
            torch._dynamo.reset()
        gc.collect()
    return "ok"


def _speed_rows(b: Bench, name: str, model, row: dict) -> None:
    a, s = b.args, b.size
    with torch.no_grad():

        def step():
            return model.denoise(b.x, b.sigma, b.both)

        gp.reset_peak(b.device)
        start = time.perf_counter()
        first = step()
        gp.sync(b.device)
        row["first_call_s"] = time.perf_counter() - start
        row["step_s"], _ = gp.time_steps(step, b.device, max(a.warmup - 1, 0), a.repeats)
        row["step_peak_gib"] = gp.peak_gib(b.device)
        row["tflops"] = b.result["tflop_per_step"] / row["step_s"]
        ref = b.result.get("reference", {}).get("step_s")
        row["speedup_vs_diffusers_step"] = ref / row["step_s"] if ref else None
        log(f"{name}: first call {row['first_call_s']:.1f} s, step {row['step_s']:.4f} s")
        if name == "eager":
            b.eager["step_out"] = first.float()
        else:
            row["step_max_abs_diff"] = (first.float() - b.eager["step_out"]).abs().max().item()
            row["step_rel_diff"] = gp.relative_difference(first, b.eager["step_out"])
        start = time.perf_counter()
        b.generate(b.pipeline(model, a.warmup_steps))
        row["generate_warmup_s"] = time.perf_counter() - start
        pipe = b.pipeline(model, s["steps"])
        frames, gen = gp.timed_call(lambda: b.generate(pipe), model, gp.OUR_PARTS, b.device, ("vae_decode",))
        latents = gen.pop("kept")["vae_decode"][0]
        row["generate"] = gen
        ref = b.result.get("reference", {}).get("generate", {}).get("seconds")
        row["speedup_vs_diffusers_generate"] = ref / gen["seconds"] if ref else None
        log(f"{name}: {s['steps']}-step generation {gen['seconds']:.2f} s, peak {gen['peak_gib']} GiB")
        if name == "eager":
            b.eager.update(frames=frames, latents=latents)
            if "diffusers_frames" in b.eager:
                b.result["noise_floor"]["eager_vs_diffusers"] = gp.compare(frames, b.eager["diffusers_frames"])
            undo = gp.split_cfg(model)
            try:
                split, _ = gp.timed_call(lambda: b.generate(pipe), model, {}, b.device, ())
            finally:
                undo()
            b.result["noise_floor"]["split_cfg_vs_eager"] = gp.compare(split, frames)
        else:
            row["frames_vs_eager"] = gp.compare(frames, b.eager["frames"])
            row["latents_rel_diff"] = gp.relative_difference(latents, b.eager["latents"])


def long_path(b: Bench) -> None:
    from camera.presets import spiral
    from nvs.chunking import plan_chunks

    a, s, m = b.args, b.size, b.model
    n = s["long_frames"]
    path = spiral(n, height=s["size"], width=s["size"]).to(dtype=torch.float32)
    model = m if a.long_speed == "eager" else gp.accelerated_copy(m, speed_mode(a.long_speed))
    st = m.settings
    plan = plan_chunks(n, len(b.inputs), st.num_frames, st.max_input_views, st.chunking)
    with torch.no_grad():
        pipe = b.pipeline(model, s["steps"])
        frames, row = gp.timed_call(lambda: b.generate(pipe, b.inputs, path), model, {}, b.device)
    row.pop("kept")
    row.update(frames=int(frames.shape[0]), passes=len(plan), speed=a.long_speed, chunking=st.chunking)
    b.result["long"] = row


def memory(b: Bench) -> None:
    from dataclasses import replace as dc_replace

    a, s, m = b.args, b.size, b.model
    settings, first = m.settings, {}  # size -> frames of the first mode, which the others are compared with
    try:
        for mode in a.memory_modes.split(","):
            for frames, height, width in s["memory_sizes"]:
                row: dict = {"memory": mode, "frames": frames, "height": height, "width": width}
                b.result["memory"].append(row)
                m.settings = dc_replace(settings, num_frames=frames, image_size=(height, width))
                inputs, path = gp.scene(frames, height, width)
                try:
                    m.to(b.device)  # a low-memory pipeline built before left the parts on the CPU
                    pipe = b.pipeline(m, s["steps"], memory=mode)
                    with torch.no_grad():
                        out, gen = gp.timed_call(lambda: b.generate(pipe, inputs, path), m, gp.OUR_PARTS, b.device)  # noqa: B023
                    gen.pop("kept")
                    row.update(gen)
                    if (frames, height, width) in first:
                        row["frames_vs_first_mode"] = gp.compare(out, first[(frames, height, width)])
                    else:
                        first[(frames, height, width)] = out
                    log(
                        f"memory={mode} {frames} x {height}x{width}: {gen['seconds']:.2f} s, peak {gen['peak_gib']} GiB"
                    )
                except Exception as e:  # one row's failure (e.g. out of memory) leaves the others
                    row["error"] = f"{type(e).__name__}: {e}"[:500]
                finally:
                    pipe = None
                b.write()
    finally:
        m.settings = settings
        m.to(b.device)


def run(b: Bench, name: str) -> None:
    a = b.args
    limit = min(a.limits.get(name, LIMITS.get(name, 300)), a.budget - (time.perf_counter() - b.start))
    record: dict = {"limit_s": limit}
    b.result["stages"][name] = record
    if limit < 5:
        record["status"] = "skipped: budget spent"
        b.write()
        return
    log(f"stage {name} (limit {limit:.0f} s)")
    start = time.perf_counter()
    try:
        with time_limit(limit):
            stage = {"setup": setup, "reference": reference, "memory": memory, "long": long_path}.get(name)
            record["status"] = (stage(b) if stage else speed(b, name)) or "ok"
    except StageTimeout as e:
        record["status"] = f"timeout: {e}"
    except Exception as e:
        record["status"] = f"error: {type(e).__name__}: {e}"[:800]
        record["traceback"] = traceback.format_exc()[-3000:]
        if name == "setup":
            raise
    finally:
        record["seconds"] = time.perf_counter() - start
        b.write()
        log(f"stage {name}: {record['status']} after {record['seconds']:.1f} s")


def main(argv: list[str] | None = None) -> int:
    from benchmarks.generation_report import print_tables

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", required=True, type=Path)
    parser.add_argument("--quick", action="store_true", help="tiny preset on CPU at 32²: a smoke test")
    parser.add_argument("--stages", default="reference,eager,compile,long,memory")
    parser.add_argument("--conditioning", default="pixelnerf", help="configs/conditioning/<name>.yaml")
    parser.add_argument("--memory-modes", default="default,low")
    parser.add_argument("--long-speed", default="eager", help="speed mode of the long path (each chunk shape compiles)")
    parser.add_argument("--warmup", type=int, default=3, help="step calls before timing")
    parser.add_argument("--repeats", type=int, default=10, help="timed step calls (the median is reported)")
    parser.add_argument("--warmup-steps", type=int, default=2, help="sampling steps of each warm-up generation")
    parser.add_argument("--budget", type=float, default=470.0, help="seconds for all stages together")
    parser.add_argument("--limit", action="append", default=[], metavar="STAGE=SECONDS", help="a stage's time limit")
    a = parser.parse_args(argv)
    stages = [x for x in a.stages.split(",") if x]
    known = {"reference", "memory", "long", *SPEED_MODES, *CANDIDATES}
    unknown = [x for x in stages if x not in known]
    if unknown:
        parser.error(f"unknown stages {unknown}; known: {', '.join(sorted(known))}")
    a.limits = {}
    for item in a.limit:
        key, _, value = item.partition("=")
        try:
            a.limits[key] = float(value)
        except ValueError:
            parser.error(f"--limit {item!r}: expected STAGE=SECONDS")
    if a.quick:
        a.warmup, a.repeats, a.warmup_steps = 1, 1, 1
    elif not torch.cuda.is_available():
        parser.error("the full-size benchmark needs a CUDA GPU; use --quick on CPU")
    modes = [x for x in stages if x in SPEED_MODES or x in CANDIDATES]
    if modes and "eager" not in stages[: stages.index(modes[0]) + 1]:
        stages.insert(stages.index(modes[0]), "eager")  # the other modes are compared with eager
    a.out.mkdir(parents=True, exist_ok=True)
    b = Bench(a)
    b.result["stage_order"] = stages
    for name in ["setup", *stages]:
        run(b, name)
    b.result["wall_s"] = time.perf_counter() - b.start
    b.write()
    print_tables(b.result)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
