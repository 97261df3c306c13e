"""Training (and evaluation) throughput and model-FLOPs utilisation, measured in one process.

    .venv/bin/python bench/throughput.py [--variants trm_small,baseline] [--steps 8] [--precision fp32]
    .venv/bin/python bench/throughput.py --shape nanotrm [--eval] [--vs trainer.compile=true] [--rounds 3]

For each variant it builds the model and trainer exactly as ``forge run`` does (default task:
6x6 Sudoku), runs a few warm-up steps, then times ``--steps`` optimizer steps and prints:

* supervised examples·steps/s (batch rows × optimizer steps / s — each step supervises every row once);
* model FLOPs per optimizer step, counted by ``torch.utils.flop_counter`` on a real step
  (forward of all T cycles + backward of the last), and achieved GFLOP/s;
* MFU against GEMM peaks measured in this process: a square 2048² fp32 matmul, and a matmul of
  the model's own largest linear-layer shape (the ceiling its matrix products can reach).

``--shape nanotrm`` is the shape of the public Lightning port of TRM (nano-trm) that the project
compares itself with: 6x6 Sudoku (36 tokens), d=64, 2 layers, MLP token mixer, n=3, T=2,
N_sup=16, batch 256, fp32, with our 96-wide token mixer. ``--shape nanotrm_port`` is the port's
exact network and loss at that shape: its token mixer is 256 wide and normalises over the
sequence axis (our ``mlp_official``), it has no position embedding and uses stable-max
cross-entropy. The port itself is run back to back with ours by ``bench/peer.py``; this bench
prints no figure of the port.

``--vs OVERRIDE[,OVERRIDE...]`` builds a second trainer B (the same config plus those overrides)
and times A and B interleaved, ``--rounds`` times (A B A B ...), and prints both medians and
B/A: on a shared machine only such ratios carry over. ``trainer.threads=K`` in ``--vs`` switches
torch's intra-op threads before each block. With ``trainer.compile=true`` (in the config or in
``--vs``) it prints the compile seconds (first step minus a steady step, and dynamo's own
count), the recompiles, and the largest difference of the logits from the eager model after the
same step.

``--device cuda`` runs the trainer and the GEMM peaks on the GPU (timers synchronise the device;
the peak CUDA memory is printed); the default, ``auto``, is the trainer's own (CUDA where present).
``--no-logits-check`` skips the eager-vs-compiled logits comparison of ``--vs trainer.compile=true``
(it builds and compiles two more trainers: minutes at GPU scale).

``--eval`` times evaluation against training at the same shape, in one process: blocks of
``--steps`` training steps interleaved with blocks of inference (``forge eval``'s path,
:func:`~agent_forge.phases.common.exploration.explore` in ``torch.inference_mode``: the training
batch's rows, every supervision step) — plain, with ``--eval-samples K`` noisy trajectories, and
with per-trajectory early exit — and prints examples·steps/s (wall and per CPU second) and the
eval/train ratio of each, medians over ``--rounds``. Then the eval split at several batch sizes
(``--eval-batches``), as examples/s and examples·steps/s.
``--metrics runs/<run>/metrics.jsonl`` prints the *finished* examples/s (samples that halted, per
second: what a user feels) early and late in that run, next to its examples·steps/s.

Accuracy against wall-clock for TRM vs the baseline is ``forge ablate`` (see docs/performance.md).
It is not a test: numbers depend on the machine and its load; compare ratios from one run.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import statistics
import time
from dataclasses import dataclass
from typing import Any

import torch
from torch.utils.flop_counter import FlopCounterMode

from agent_forge.config import apply_overrides
from agent_forge.phases.cognate.events import Event
from agent_forge.phases.cognate.building import build_model
from agent_forge.phases.cognate.config import validate_cognate
from agent_forge.phases.cognate.fit import FitContext
from agent_forge.plugin_host import load_plugins
from agent_forge.phases.cognate import CallbackSpec, TrainerSpec, VariantSpec
from agent_forge.specs import DatasetSpec

#: Named workloads: a variant and the overrides that give it another model's exact work.
SHAPES: dict[str, tuple[str, list[str]]] = {
    # nano-trm's 6x6 Sudoku run. trm_small's other settings stay (learned positions, EMA, ACT):
    # they add no matrix products of note. The expansion (4) gives a 256-wide SwiGLU either way
    # (rounded up to a multiple of 256 from 171 at d=64).
    "nanotrm": ("trm_small", ["model.n=3", "model.T=2", "model.n_sup=16", "model.mixer=mlp",
                              "model.n_layers=2", "model.d_model=64", "trainer.batch_size=256",
                              "trainer.precision=fp32"]),
}
# The port's own network at that shape (nano-trm's ReasoningBlock with use_mlp_t, read in its
# src/nn/modules/trm_block.py): the mixer's SwiGLU rounds 36 * 4 * 2/3 up to 256, not 96 (about
# 1.45x our mixer's FLOPs), and it normalises over the sequence; pos_emb_type null; stable-max loss.
SHAPES["nanotrm_port"] = (SHAPES["nanotrm"][0], [*SHAPES["nanotrm"][1], "model.mixer=mlp_official",
                                                 "model.learned_positions=false", "trainer.loss=stablemax"])


#: CPU time per wall second that a rate in CPU seconds stands for: with one thread, process CPU
#: time is the time the work had a core, so FLOPs per CPU second do not fall when other work
#: shares the machine (with several threads, spinning at barriers counts as CPU time).
LAST_CPU_RATE: dict[str, float] = {}


def cpu_flags() -> set[str]:
    try:
        line = next(x for x in open("/proc/cpuinfo") if x.startswith("flags"))
    except (OSError, StopIteration):
        return set()
    return set(line.split(":", 1)[1].split())


def native_bf16() -> bool:
    return bool({"avx512_bf16", "amx_bf16"} & cpu_flags())


#: Where the GEMM peaks run (``--device``); CUDA work is asynchronous, so timers synchronise it.
DEVICE = torch.device("cpu")


def sync(device: torch.device | None = None) -> None:
    if (device or DEVICE).type == "cuda":
        torch.cuda.synchronize(device or DEVICE)


def _rate(fn, flops: float, repeats: int, key: str) -> float:
    fn()
    sync()
    wall, cpu = time.perf_counter(), time.process_time()
    for _ in range(repeats):
        fn()
    sync()
    wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    LAST_CPU_RATE[key] = flops * repeats / max(cpu, 1e-9)
    return flops * repeats / wall


def gemm_peak(dtype: torch.dtype, n: int = 2048, repeats: int = 5) -> float:
    # A bf16 GEMM without AMX/AVX512-BF16 can take minutes at this size (docs/performance.md).
    if DEVICE.type == "cpu" and dtype == torch.bfloat16 and not native_bf16():
        n, repeats = 512, 1
    if DEVICE.type == "cuda":
        n, repeats = 8192, 10  # large enough to approach the tensor cores' rate
    a, b = torch.randn(n, n, dtype=dtype, device=DEVICE), torch.randn(n, n, dtype=dtype, device=DEVICE)
    return _rate(lambda: a @ b, 2 * n**3, repeats, f"peak/{dtype}")


def gemm_shaped(dtype: torch.dtype, m: int = 4608, k: int = 64, n: int = 512, repeats: int = 20) -> float:
    """A linear layer of shape (m x k) @ (k x n): by default trm_small's SwiGLU up-projection
    (128 rows x 36 cells, d=64 -> 2x256). The ceiling the model's own matrix products can reach,
    well below the square-GEMM peak."""
    x, w = torch.randn(m, k, dtype=dtype, device=DEVICE), torch.randn(n, k, dtype=dtype, device=DEVICE)
    return _rate(lambda: torch.nn.functional.linear(x, w), 2 * m * k * n, repeats, f"shaped/{dtype}")


@dataclass
class Bench:
    """One trainer, set up as ``forge run`` sets it up, ready to take steps."""

    cfg: Any
    trainer: Any
    state: Any
    threads: int

    def step(self) -> None:
        self.trainer._train_step(self.state)

    def timed(self, steps: int) -> tuple[float, float]:
        """(wall s, process CPU s) for ``steps`` steps, run with this bench's thread count."""
        torch.set_num_threads(self.threads)
        sync(self.state.device)
        wall, cpu = time.perf_counter(), time.process_time()
        for _ in range(steps):
            self.step()
        sync(self.state.device)
        return time.perf_counter() - wall, time.process_time() - cpu


def build(host, variant: str, overrides: list[str]) -> Bench:
    spec = host.get(VariantSpec, variant).config
    # trainer.compile=auto decides inside a run's loop, which the bench does not run: it times
    # eager unless told trainer.compile=true.
    cfg = validate_cognate(host, apply_overrides(spec, ["trainer.max_steps=1000000", "trainer.compile=false",
                                                        *overrides]))
    task = host.get(DatasetSpec, cfg.task_name).build(cfg.task, cfg.data_seed)
    torch.manual_seed(0)
    model = build_model(host, cfg, task.spec, 0)
    trainer = host.get(TrainerSpec, cfg.trainer_name).build(cfg.trainer)
    callbacks = {n: host.get(CallbackSpec, n).build(c) for n, c in cfg.callbacks.items()}
    ctx = FitContext(model=model, task=task, run_dir=None, seed=0, callbacks=callbacks, host=host, progress=False)
    default_threads = torch.get_num_threads()
    state = trainer._state(ctx)
    if cfg.trainer.compile:
        trainer.compile_for_training(state)
    trainer.callbacks.on_fit_start(trainer, state)
    threads = cfg.trainer.threads or default_threads
    torch.set_num_threads(default_threads)
    return Bench(cfg, trainer, state, threads)


def compile_counters() -> dict[str, float]:
    """Frames dynamo compiled, recompiles, and seconds it spent compiling so far (0 without compile)."""
    try:
        from torch._dynamo.utils import compilation_time_metrics, counters
    except ImportError:  # pragma: no cover - very old torch
        return {}
    seconds = sum(compilation_time_metrics.get("_compile.compile_inner", []))
    seconds += sum(compilation_time_metrics.get("compile_fx.<locals>.bw_compiler", []))
    return {"frames_compiled": int(counters["stats"]["unique_graphs"]),
            "recompiles": int(sum(counters["recompiles"].values())) if "recompiles" in counters else 0,
            "dynamo_compile_s": round(seconds, 2)}


def warm_up(b: Bench, warmup: int) -> dict[str, float]:
    """Run the warm-up steps; the first one pays torch.compile's cost when it is on."""
    out: dict[str, float] = {}
    before = compile_counters()
    for i in range(warmup):
        wall, _ = b.timed(1)
        out[f"warmup_step{i}_s"] = round(wall, 3)
    if b.cfg.trainer.compile:
        after = compile_counters()
        out.update({k: round(after[k] - before.get(k, 0), 2) for k in after})
    return out


def count_flops(b: Bench) -> float:
    with FlopCounterMode(display=False) as counter:
        b.step()
    return counter.get_total_flops()


def row(b: Bench, flops: float, wall: float, cpu: float, steps: int, variant: str) -> dict[str, Any]:
    rows = b.cfg.trainer.batch_size * steps
    return {"variant": variant, "precision": b.state.precision, "batch": b.cfg.trainer.batch_size,
            "threads": b.threads, "compile": b.cfg.trainer.compile,
            "parameters": sum(p.numel() for p in b.state.model.parameters()),
            "sup_examples_steps_per_s": rows / wall, "seconds_per_step": wall / steps,
            "cpu_seconds_per_step": cpu / steps, "sup_examples_steps_per_cpu_s": rows / cpu,
            "gflops_per_cpu_s": flops * steps / cpu / 1e9,
            "gflop_per_step": flops / 1e9, "achieved_gflops": flops * steps / wall / 1e9}


def measure(host, variant: str, steps: int, warmup: int, overrides: list[str], rounds: int = 1) -> dict:
    """``rounds`` blocks of ``steps`` steps: the median block, and the best one (the least
    disturbed by other work on a shared machine)."""
    b = build(host, variant, overrides)
    info = warm_up(b, warmup)
    # FLOPs are counted on an eager twin: the counter does not see inside compiled code.
    flops = count_flops(b if not b.cfg.trainer.compile else build(host, variant, [*overrides, "trainer.compile=false"]))
    blocks = [b.timed(steps) for _ in range(rounds)]
    wall = statistics.median(t[0] for t in blocks)
    cpu = statistics.median(t[1] for t in blocks)
    best = min(t[0] for t in blocks)
    return {**row(b, flops, wall, cpu, steps, variant), **info, "block_walls_s": [round(t[0], 3) for t in blocks],
            "best_block_sup_examples_steps_per_s": b.cfg.trainer.batch_size * steps / best}


def interleaved(host, variant: str, steps: int, warmup: int, rounds: int, base: list[str],
                vs: list[str], logits_check: bool = True) -> dict[str, Any]:
    """A (base) and B (base + vs) built side by side, timed A B A B ...; medians and B/A."""
    a, b = build(host, variant, base), build(host, variant, [*base, *vs])
    info = {"A": warm_up(a, warmup), "B": warm_up(b, warmup)}
    flops = count_flops(a) if not a.cfg.trainer.compile else count_flops(build(host, variant, [*base, "trainer.compile=false"]))
    times: dict[str, list[tuple[float, float]]] = {"A": [], "B": []}
    for _ in range(rounds):
        times["A"].append(a.timed(steps))
        times["B"].append(b.timed(steps))
    out: dict[str, Any] = {"vs": vs, "rounds": rounds, "steps_per_block": steps}
    for key, bench in (("A", a), ("B", b)):
        wall = statistics.median(t[0] for t in times[key])
        cpu = statistics.median(t[1] for t in times[key])
        best = min(t[0] for t in times[key])
        out[key] = {**row(bench, flops, wall, cpu, steps, variant), **info[key],
                    "block_walls_s": [round(t[0], 3) for t in times[key]],
                    "best_block_sup_examples_steps_per_s": bench.cfg.trainer.batch_size * steps / best}
    out["B_over_A_speed"] = out["B"]["sup_examples_steps_per_s"] / out["A"]["sup_examples_steps_per_s"]
    if a.cfg.trainer.compile != b.cfg.trainer.compile and logits_check:
        out["logits_max_abs_diff"] = logits_difference(host, variant, base, vs)
    return out


def logits_difference(host, variant: str, base: list[str], vs: list[str]) -> dict[str, float]:
    """Two fresh trainers with the same seed, A and B: the largest |logit_A - logit_B| after the
    first step and after a second one (which sees the first update)."""
    a, b = build(host, variant, base), build(host, variant, [*base, *vs])
    out = {}
    for i in range(2):
        a.step()
        b.step()
        out[f"step{i + 1}"] = float((a.state.output.logits - b.state.output.logits).detach().abs().max())
    out["weights_after_2_steps"] = max(float((p - q).abs().max()) for p, q in
                                       zip(a.state.model.parameters(), b.state.model.parameters()))
    return out


def evaluation(host, variant: str, overrides: list[str], batch_sizes: list[int], repeats: int) -> list[dict]:
    """Inference over the eval split (all n_sup steps per sample, as forge eval runs it)."""
    from agent_forge.phases.common.exploration import explore

    b = build(host, variant, overrides)
    split, model, n_sup = b.state.task.eval, b.state.model, b.state.n_sup
    results = []
    for bs in batch_sizes:
        bs = min(bs, len(split))
        walls = []
        for _ in range(repeats + 1):  # the first pass warms up
            start = time.perf_counter()
            explore(model, split.inputs, n_sup=n_sup, batch_size=bs, device=b.state.device, precision=b.state.precision)
            walls.append(time.perf_counter() - start)
        wall = statistics.median(walls[1:])
        results.append({"eval_batch": bs, "examples": len(split), "n_sup": n_sup, "seconds": round(wall, 3),
                        "examples_per_s": len(split) / wall, "examples_steps_per_s": len(split) * n_sup / wall})
    return results


def eval_vs_train(host, variant: str, overrides: list[str], steps: int, warmup: int, rounds: int,
                  samples: int, noise: float, compiled: bool = False) -> dict[str, Any]:
    """Training steps and inference at the same shape (the training batch's rows), interleaved
    ``rounds`` times: examples·steps per wall and per CPU second, and eval / train for each."""
    from agent_forge.phases.common.exploration import explore

    b = build(host, variant, overrides)
    warm_up(b, warmup)
    model, n_sup, rows = b.state.model, b.state.n_sup, b.cfg.trainer.batch_size
    inputs = b.state.task.eval.inputs
    inputs = inputs.repeat((rows + len(inputs) - 1) // len(inputs), 1)[:rows]
    modes = {"eval": dict(samples=1), f"eval_K{samples}": dict(samples=samples, noise=noise),
             "eval_early_exit": dict(samples=1, early_exit=True)}
    if compiled:  # the same two runs through torch.compile (forge eval --compile); its warm-up compiles
        modes.update({"eval_compiled": dict(samples=1, compile=True),
                      f"eval_compiled_K{samples}": dict(samples=samples, noise=noise, compile=True)})

    def run_eval(kw: dict) -> tuple[float, float, int]:
        torch.set_num_threads(b.threads)
        x = inputs[: max(1, rows // kw.get("samples", 1))]
        wall, cpu = time.perf_counter(), time.process_time()
        c = explore(model, x, n_sup=n_sup, batch_size=rows, device=b.state.device, precision=b.state.precision, **kw)
        return time.perf_counter() - wall, time.process_time() - cpu, c.trajectory_steps

    compile_s = {}
    for m, kw in modes.items():
        compile_s[m] = round(run_eval(kw)[0], 2)  # warm-up (with compile=True: the compile)
    times: dict[str, list[tuple[float, float, int]]] = {"train": [], **{m: [] for m in modes}}
    for _ in range(rounds):
        wall, cpu = b.timed(steps)
        times["train"].append((wall, cpu, rows * steps))
        for m, kw in modes.items():
            times[m].append(run_eval(kw))
    out: dict[str, Any] = {"variant": variant, "rows": rows, "n_sup": n_sup, "train_steps_per_block": steps,
                           "rounds": rounds, "threads": b.threads, "warmup_s": compile_s,
                           "load_average_end": round(os.getloadavg()[0], 2)}
    for m, ts in times.items():
        out[m] = {"examples_steps_per_s": statistics.median(n / w for w, _, n in ts),
                  "examples_steps_per_cpu_s": statistics.median(n / c for _, c, n in ts),
                  "example_steps_per_block": [n for _, _, n in ts]}
    for m in modes:
        out[m]["vs_train_wall"] = out[m]["examples_steps_per_s"] / out["train"]["examples_steps_per_s"]
        out[m]["vs_train_cpu"] = out[m]["examples_steps_per_cpu_s"] / out["train"]["examples_steps_per_cpu_s"]
    return out


def finished_rates(path: str) -> dict[str, Any]:
    """Finished examples/s against examples·steps/s early and late in a run, from its metrics.jsonl."""
    rows = [json.loads(line) for line in open(path)]
    train = [r for r in rows if r.get("kind", "train") == "train" and "examples_per_s" in r]
    if len(train) < 4:
        raise SystemExit(f"{path}: fewer than 4 training rows")
    k = max(2, len(train) // 5)
    early, late = train[1:k + 1], train[-k:]  # the first row includes start-up

    def mean(rs, key):
        vals = [r[key] for r in rs if key in r]
        return sum(vals) / len(vals) if vals else None

    return {p: {"steps": f"{rs[0]['step']}-{rs[-1]['step']}", "finished_examples_per_s": mean(rs, "examples_per_s"),
                "sup_examples_steps_per_s": mean(rs, "sup_steps_per_s"), "mean_sup_steps": mean(rs, "mean_sup_steps")}
            for p, rs in (("early", early), ("late", late))}


def peak_rss_gb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20


def peak_memory() -> str:
    """Peak host RSS, and on CUDA the peak memory torch allocated and reserved on the device."""
    text = f"peak RSS {peak_rss_gb():.2f} GB"
    if DEVICE.type == "cuda":
        text += (f", peak CUDA memory {torch.cuda.max_memory_allocated(DEVICE) / 2**30:.2f} GiB allocated,"
                 f" {torch.cuda.max_memory_reserved(DEVICE) / 2**30:.2f} GiB reserved")
    return text


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--variants", default="trm_small,baseline")
    parser.add_argument("--shape", choices=sorted(SHAPES), help="a named workload (overrides --variants)")
    parser.add_argument("--steps", type=int, default=8)
    parser.add_argument("--warmup", type=int, default=2)
    parser.add_argument("--precision", default="auto", choices=["auto", "fp32", "bf16"])
    parser.add_argument("--threads", type=int, help="intra-op threads for the GEMM peaks and the trainer"
                                                        " (trainer.threads); default: torch's")
    parser.add_argument("--set", action="append", default=[], dest="overrides")
    parser.add_argument("--vs", help="comma-separated overrides of a variant B timed interleaved with A")
    parser.add_argument("--rounds", type=int, default=3, help="timed blocks (A/B rounds with --vs)")
    parser.add_argument("--eval", action="store_true", help="time evaluation instead of training")
    parser.add_argument("--eval-batches", default="100,250,500")
    parser.add_argument("--eval-samples", type=int, default=8, help="K of the noisy-trajectory eval block")
    parser.add_argument("--eval-noise", type=float, default=0.2, help="noise of the noisy-trajectory eval block")
    parser.add_argument("--eval-repeats", type=int, default=1, help="timed passes per batch size (after a warm-up pass)")
    parser.add_argument("--eval-compile", action="store_true",
                        help="with --eval: also time the compiled inference step (forge eval --compile)")
    parser.add_argument("--metrics", help="a run's metrics.jsonl: finished examples/s early and late")
    parser.add_argument("--shaped", help="M,K,N of the model-shaped linear (default: trm_small's SwiGLU"
                                         " up-projection, 4608,64,512; trm_paper's at batch 768: 74496,512,3072)")
    parser.add_argument("--device", default="auto", help="auto (the trainer's: CUDA where present), cpu, cuda[:i]")
    parser.add_argument("--no-logits-check", action="store_true",
                        help="with --vs trainer.compile=...: skip the eager-vs-compiled logits comparison")
    args = parser.parse_args()
    if args.metrics:
        print(json.dumps(finished_rates(args.metrics), indent=1))
        return
    host = load_plugins(entry_points=False)
    variants, base = [v.strip() for v in args.variants.split(",")], [f"trainer.precision={args.precision}"]
    if args.shape:
        variant, shape_overrides = SHAPES[args.shape]
        variants, base = [variant], shape_overrides
    base = [*base, *args.overrides]
    if args.threads:
        torch.set_num_threads(args.threads)
        base.append(f"trainer.threads={args.threads}")
    global DEVICE
    from agent_forge.phases.cognate.training_config import resolve_device

    DEVICE = resolve_device(args.device)
    base.append(f"trainer.device={DEVICE}")
    flags = cpu_flags()
    gpu = (f", {torch.cuda.get_device_name(DEVICE)} (CUDA {torch.version.cuda})" if DEVICE.type == "cuda" else "")
    print(f"# {platform.processor() or platform.machine()} ({', '.join(sorted(flags & {'avx2', 'avx512f', 'avx512_bf16', 'amx_bf16'}))}){gpu},"
          f" torch {torch.__version__}, {torch.get_num_threads()} threads, load average {os.getloadavg()[0]:.2f}"
          + (f", shape {args.shape}: {variants[0]} + {' '.join(base)}" if args.shape else ""))
    if args.eval:
        for variant in variants:
            r = eval_vs_train(host, variant, base, args.steps, args.warmup, args.rounds, args.eval_samples,
                              args.eval_noise, args.eval_compile)
            t = r["train"]
            print(f"{variant:>12} train ({r['rows']} rows): {t['examples_steps_per_s']:8.1f} examples·steps/s,"
                  f" {t['examples_steps_per_cpu_s']:8.1f} per CPU s (median of {r['rounds']} blocks)")
            for m in (k for k in r if k.startswith("eval")):
                e = r[m]
                print(f"{variant:>12} {m:<16}: {e['examples_steps_per_s']:8.1f} examples·steps/s,"
                      f" {e['examples_steps_per_cpu_s']:8.1f} per CPU s; eval/train {e['vs_train_wall']:.2f}x wall,"
                      f" {e['vs_train_cpu']:.2f}x CPU")
            print(json.dumps(r))
            for r in evaluation(host, variant, base, [int(x) for x in args.eval_batches.split(",")],
                            repeats=args.eval_repeats):
                print(f"{variant:>12} eval batch {r['eval_batch']:4d}: {r['examples_per_s']:8.1f} examples/s,"
                      f" {r['examples_steps_per_s']:8.1f} examples·steps/s ({r['examples']} examples x {r['n_sup']}"
                      f" steps in {r['seconds']:.2f} s)")
                print(json.dumps(r))
        return
    if DEVICE.type == "cuda":
        torch.backends.cuda.matmul.allow_tf32 = False  # an fp32 peak, not TF32's (the trainer's fp32 is fp32)
    peaks = {"fp32": gemm_peak(torch.float32), "bf16": gemm_peak(torch.bfloat16)}
    cpu_peak = {k.split("/")[1]: v / 1e9 for k, v in LAST_CPU_RATE.items() if k.startswith("peak/")}
    print(f"GEMM peak ({'8192^3' if DEVICE.type == 'cuda' else '2048^3; bf16 at 512^3 on CPUs without native bf16'}): fp32 {peaks['fp32'] / 1e9:.1f} GFLOP/s, bf16 {peaks['bf16'] / 1e9:.1f} GFLOP/s"
          f" (per CPU second: fp32 {cpu_peak['torch.float32']:.1f}, bf16 {cpu_peak['torch.bfloat16']:.1f})")
    shape = (256 * 36, 64, 512) if args.shape in ("nanotrm", "nanotrm_port") else (4608, 64, 512)
    if args.shaped:
        shape = tuple(int(x) for x in args.shaped.split(","))
    shaped = {"fp32": gemm_shaped(torch.float32, *shape), "bf16": gemm_shaped(torch.bfloat16, *shape, repeats=2)}
    cpu_shaped = {k.split("/")[1]: v / 1e9 for k, v in LAST_CPU_RATE.items() if k.startswith("shaped/")}
    print(f"model-shaped linear ({shape[0]}x{shape[1]} @ {shape[1]}x{shape[2]}): fp32 {shaped['fp32'] / 1e9:.1f} GFLOP/s,"
          f" bf16 {shaped['bf16'] / 1e9:.1f} GFLOP/s (per CPU second: fp32 {cpu_shaped['torch.float32']:.1f},"
          f" bf16 {cpu_shaped['torch.bfloat16']:.1f})")
    if args.vs:
        r = interleaved(host, variants[0], args.steps, args.warmup, args.rounds, base, args.vs.split(","),
                        logits_check=not args.no_logits_check)
        for key in ("A", "B"):
            x = r[key]
            x["mfu"] = x["achieved_gflops"] * 1e9 / peaks["fp32"]
            print(f"{key} {' '.join(r['vs']) if key == 'B' else '(base)'}: {x['sup_examples_steps_per_s']:.1f}"
                  f" examples·steps/s (median of {args.rounds} blocks {x['block_walls_s']} s; best block"
                  f" {x['best_block_sup_examples_steps_per_s']:.1f}), {x['seconds_per_step']:.3f}"
                  f" s/step, CPU {x['cpu_seconds_per_step']:.3f} s/step ({x['sup_examples_steps_per_cpu_s']:.1f} examples·steps"
                  f" per CPU second), {x['achieved_gflops']:.1f} GFLOP/s,"
                  f" MFU {100 * x['mfu']:.1f}%"
                  + (f", compile {x['warmup_step0_s'] - x['seconds_per_step']:.1f} s (dynamo {x['dynamo_compile_s']} s,"
                     f" {x['frames_compiled']} graphs, {x['recompiles']} recompiles)" if x["compile"] else ""))
        print(f"B/A speed: {r['B_over_A_speed']:.3f}x")
        if "logits_max_abs_diff" in r:
            print(f"max |logits eager - compiled|: {r['logits_max_abs_diff']}")
        print(f"# {peak_memory()}")
        print(json.dumps({"peaks_gflops": {k: v / 1e9 for k, v in peaks.items()},
                          "shaped_gflops": {k: v / 1e9 for k, v in shaped.items()}, **r}))
        return
    results = []
    for variant in variants:
        r = measure(host, variant, args.steps, args.warmup, base, args.rounds)
        peak = peaks["bf16" if r["precision"] == "bf16" else "fp32"]
        r["mfu"] = r["achieved_gflops"] * 1e9 / peak
        r["mfu_of_shaped"] = r["achieved_gflops"] * 1e9 / shaped["bf16" if r["precision"] == "bf16" else "fp32"]
        r["mfu_per_cpu_s"] = r["gflops_per_cpu_s"] / cpu_peak["torch.bfloat16" if r["precision"] == "bf16" else "torch.float32"]
        results.append(r)
        print(f"{r['variant']:>12} [{r['precision']}] batch {r['batch']}: {r['sup_examples_steps_per_s']:8.1f}"
              f" examples·steps/s (median of {len(r['block_walls_s'])} blocks of {args.steps} steps;"
              f" best block {r['best_block_sup_examples_steps_per_s']:.1f}),"
              f" {r['seconds_per_step']:.3f} s/step (CPU {r['cpu_seconds_per_step']:.3f} s/step:"
              f" {r['sup_examples_steps_per_cpu_s']:.1f} examples·steps and {r['gflops_per_cpu_s']:.1f} GFLOP per CPU second),"
              f" {r['gflop_per_step']:.1f} GFLOP/step, {r['achieved_gflops']:.1f} GFLOP/s,"
              f" MFU {100 * r['mfu']:.1f}% of the measured {r['precision']} GEMM peak"
              f" ({100 * r['mfu_of_shaped']:.1f}% of the model-shaped one; per CPU second {100 * r['mfu_per_cpu_s']:.1f}%"
              f" of the GEMM's)"
              + (f", compile {r['warmup_step0_s'] - r['seconds_per_step']:.1f} s (dynamo {r['dynamo_compile_s']} s,"
                 f" {r['frames_compiled']} graphs, {r['recompiles']} recompiles)" if r["compile"] else ""))
    print(f"# load average after: {os.getloadavg()[0]:.2f}; {peak_memory()}")
    print(json.dumps({"peaks_gflops": {k: v / 1e9 for k, v in peaks.items()}, "peaks_gflops_per_cpu_s": cpu_peak,
                      "shaped_gflops": {k: v / 1e9 for k, v in shaped.items()}, "shaped_gflops_per_cpu_s": cpu_shaped,
                      "results": results}))


if __name__ == "__main__":
    main()
