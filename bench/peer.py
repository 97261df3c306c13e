"""The port (nano-trm) and this trainer on the same work, back to back, in one command.

    .venv/bin/python bench/peer.py --setup-only                       # once: the side environment
    .venv/bin/python bench/peer.py [--rounds 5 --steps 8 --warmup 2] [--threads N] [--ours-shape nanotrm_port]

nano-trm (github:olivkoch/nano-trm, ``nano-trm`` 0.1.0 on the package index) is the public
Lightning port of TRM. ``--setup-only`` (or the first run) builds a side virtual environment,
``$FORGE_CACHE_DIR/peer-venv`` unless ``--venv`` says otherwise:

* ``python -m venv`` with this interpreter, and a ``.pth`` file naming the folder this process
  imports torch from, so the port runs on **the same torch build** (same kernels, same OpenMP
  runtime) and no second torch is downloaded: a different build would measure the build;
* ``pip install --no-deps --ignore-requires-python nano-trm==0.1.0`` (or ``--wheel FILE``): the
  package pins ``Requires-Python ==3.12.1`` in its metadata (its repository says >=3.12); it runs
  on 3.11, and ``--no-deps`` keeps pip from replacing torch through ``torchvision``;
* ``pip install`` of what its training step imports (:data:`PORT_RUNTIME`, the lower bounds of
  its metadata): lightning, einops, hydra-core, omegaconf, scikit-learn, rich, numpy. Its other
  requirements (wandb, transformers, torchvision, matplotlib, ...) are for logging, data and
  plots, which the step does not import.

A run then starts ``bench/peer_port.py`` under that environment (the port's own
``TRMModule.training_step`` plus its EMA callback, in a loop, on synthetic batches; no Lightning
Trainer for either side) and builds our trainer in this process exactly as ``bench/throughput.py
--shape NAME`` does. It counts each side's FLOPs per step, warms both up, then times ``--rounds``
rounds of ``--steps`` steps, port then ours in every round (A B A B ...), and prints both rates in
examples·supervision-steps/s (batch rows x optimizer steps / s: every step supervises every row
once), the ratio of the medians, the median of the per-round ratios, and the command that
reproduced it. Only ratios taken this way, on an otherwise idle machine, mean anything.

``--ours-shape nanotrm_port`` (default) is the port's network and loss; ``nanotrm`` is the shape
the docs have quoted so far, with our narrower token mixer (the port does ~1.45x its FLOPs per
step; both GFLOP/step are printed).
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import statistics
import subprocess
import sys
import venv as venv_module
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable

HERE = Path(__file__).resolve().parent
#: The environment as the user started the command (agent_forge, imported later, edits it).
USER_ENV = dict(os.environ)
#: What the side environment installs: the port at a fixed version, and what its training step imports.
PORT_PACKAGE = "nano-trm==0.1.0"
PORT_RUNTIME = ("lightning>=2.5.4", "einops>=0.7.0", "hydra-core>=1.3.2", "omegaconf>=2.3.0",
                "scikit-learn>=1.3.0", "rich>=14.1.0", "numpy>=2.3.0")
#: The .pth file through which the side environment imports this process's torch.
TORCH_PTH = "agent-forge-torch.pth"


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--venv", type=Path, help="side environment for the port (default $FORGE_CACHE_DIR/peer-venv)")
    p.add_argument("--wheel", type=Path, help="install nano-trm from this wheel instead of the package index")
    p.add_argument("--setup-only", action="store_true", help="build the side environment and stop")
    p.add_argument("--no-setup", action="store_true", help="fail instead of building a missing side environment")
    p.add_argument("--ours-shape", default="nanotrm_port", help="bench/throughput.py shape for our side")
    p.add_argument("--set", action="append", default=[], dest="overrides", help="an override for our side")
    p.add_argument("--rounds", type=int, default=5, help="A/B rounds (port block, then our block)")
    p.add_argument("--steps", type=int, default=8, help="optimizer steps per block")
    p.add_argument("--warmup", type=int, default=2, help="untimed steps of each side first")
    p.add_argument("--threads", type=int, help="intra-op threads for both sides (default: torch's)")
    a = p.parse_args(argv)
    for name in ("rounds", "steps"):
        if getattr(a, name) < 1:
            p.error(f"--{name} must be at least 1")
    if a.warmup < 0:
        p.error("--warmup must be >= 0")
    return a


def default_venv() -> Path:
    from agent_forge.cache import cache_dir

    return cache_dir() / "peer-venv"


def venv_python(venv: Path) -> Path:
    return venv / ("Scripts/python.exe" if os.name == "nt" else "bin/python")


# --- the arithmetic and the table (pure) ------------------------------------------------------

def rate(batch: int, steps: int, seconds: float) -> float:
    """Examples·supervision-steps per second: every optimizer step supervises every row once."""
    if seconds <= 0:
        raise ValueError(f"a block must take time; got {seconds} s")
    return batch * steps / seconds


@dataclass(frozen=True)
class Side:
    """One side's timed blocks (wall seconds, one per round) and what they ran."""

    name: str
    batch: int
    steps: int
    walls: tuple[float, ...]
    gflop_per_step: float | None = None

    @property
    def rates(self) -> list[float]:
        return [rate(self.batch, self.steps, w) for w in self.walls]

    @property
    def median(self) -> float:
        return statistics.median(self.rates)

    @property
    def best(self) -> float:
        return max(self.rates)


def compare(port: Side, ours: Side) -> dict[str, Any]:
    """Ours over the port: the ratio of the median rates, and the median of each round's ratio
    (the two blocks of a round saw nearly the same machine, so it moves less with the load)."""
    if len(port.walls) != len(ours.walls):
        raise ValueError(f"rounds differ: port {len(port.walls)}, ours {len(ours.walls)}")
    per_round = [o / p for p, o in zip(port.rates, ours.rates)]
    out = {"port_median": port.median, "ours_median": ours.median, "ratio_of_medians": ours.median / port.median,
           "median_round_ratio": statistics.median(per_round), "round_ratios": per_round,
           "port_best": port.best, "ours_best": ours.best}
    if port.gflop_per_step and ours.gflop_per_step:
        out["flops_ratio_ours_over_port"] = ours.gflop_per_step / port.gflop_per_step
    return out


def table(port: Side, ours: Side, result: dict[str, Any]) -> str:
    """A Markdown table of both sides and the ratios, as docs/performance.md shows it."""
    def gflop(s: Side) -> str:
        return f"{s.gflop_per_step:.1f}" if s.gflop_per_step else "-"

    def gflops(s: Side) -> str:
        return f"{s.median * s.gflop_per_step / s.batch:.1f}" if s.gflop_per_step else "-"

    lines = ["| side | examples·steps/s (median) | best block | per round | GFLOP/step | GFLOP/s (median) |",
             "| --- | --- | --- | --- | --- | --- |"]
    for s in (port, ours):
        lines.append(f"| {s.name} | {s.median:.1f} | {s.best:.1f} | {', '.join(f'{r:.1f}' for r in s.rates)}"
                     f" | {gflop(s)} | {gflops(s)} |")
    lines.append(f"| ours / port | **{result['ratio_of_medians']:.2f}x** (of the medians) | | median of rounds"
                 f" {result['median_round_ratio']:.2f}x | "
                 + (f"{result['flops_ratio_ours_over_port']:.2f}x" if "flops_ratio_ours_over_port" in result else "-")
                 + " | |")
    return "\n".join(lines)


def command_line(argv: Iterable[str]) -> str:
    """The command that reproduces this run, for the docs."""
    return " ".join(shlex.quote(x) for x in [".venv/bin/python", "bench/peer.py", *argv])


# --- the side environment --------------------------------------------------------------------

def torch_site() -> Path:
    """The folder this process imports torch from (where the .pth points)."""
    import torch

    return Path(torch.__file__).resolve().parent.parent


def setup_venv(venv: Path, wheel: Path | None = None) -> None:
    """Create the side environment and install the port into it (see the module docstring)."""
    print(f"# building the port's environment in {venv}", file=sys.stderr)
    venv_module.EnvBuilder(with_pip=True, clear=False).create(venv)
    py = venv_python(venv)
    site = subprocess.check_output([str(py), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                                   text=True).strip()
    Path(site, TORCH_PTH).write_text(f"{torch_site()}\n")
    pip = [str(py), "-m", "pip", "install", "--disable-pip-version-check"]
    subprocess.check_call([*pip, "--no-deps", "--ignore-requires-python", str(wheel) if wheel else PORT_PACKAGE])
    subprocess.check_call([*pip, *PORT_RUNTIME])
    subprocess.check_call([str(py), "-c", "import src.nn.models.trm, src.nn.callbacks.ema, torch;"
                                          " print('port imports; torch', torch.__version__, torch.__file__)"])


def venv_ready(venv: Path) -> bool:
    py = venv_python(venv)
    if not py.exists():
        return False
    return subprocess.run([str(py), "-c", "import src.nn.models.trm"], capture_output=True).returncode == 0


class PortProcess:
    """``bench/peer_port.py`` under the side environment, one JSON command per line."""

    def __init__(self, venv: Path, shape: dict[str, Any], env: dict[str, str]) -> None:
        args = [f"--{k.replace('_', '-')}={v}" for k, v in shape.items()]
        self.proc = subprocess.Popen([str(venv_python(venv)), str(HERE / "peer_port.py"), *args],
                                     stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, env=env)
        ready = self._read()
        if not ready.get("ready"):
            raise RuntimeError(f"the port did not start: {ready}")

    def _read(self) -> dict[str, Any]:
        line = self.proc.stdout.readline()
        if not line:
            raise RuntimeError(f"the port's process ended (exit {self.proc.wait()}); its stderr says why")
        return json.loads(line)

    def ask(self, cmd: str, **kw: Any) -> dict[str, Any]:
        self.proc.stdin.write(json.dumps({"cmd": cmd, **kw}) + "\n")
        self.proc.stdin.flush()
        return self._read()

    def close(self) -> None:
        if self.proc.poll() is None:
            self.proc.stdin.write(json.dumps({"cmd": "quit"}) + "\n")
            self.proc.stdin.flush()
            self.proc.wait(timeout=60)


def port_env() -> dict[str, str]:
    """The port's environment: the one this command started with, before ``import agent_forge``
    capped OpenMP's spin-wait (GOMP_SPINCOUNT=1000), so the port's threads wait as torch's do by
    default. A setting the user exported reaches both sides."""
    return dict(USER_ENV)


def shape_of(cfg: Any, task_spec: Any) -> dict[str, Any]:
    """Our config, as the port driver's arguments (our n is its L_cycles, our T its H_cycles)."""
    m = cfg.model
    return {"d_model": m.d_model, "layers": m.n_layers, "n": m.n, "T": m.T, "n_sup": m.n_sup,
            "batch": cfg.trainer.batch_size, "seq_len": task_spec.seq_len, "vocab": task_spec.vocab_size,
            "expansion": m.expansion}


def main(argv: list[str] | None = None) -> None:
    argv = sys.argv[1:] if argv is None else argv
    a = parse_args(argv)
    venv = a.venv or default_venv()
    if a.setup_only or not venv_ready(venv):
        if a.no_setup:
            raise SystemExit(f"no side environment with nano-trm at {venv}; run bench/peer.py --setup-only")
        setup_venv(venv, a.wheel)
        if a.setup_only:
            return
    sys.path.insert(0, str(HERE))
    import torch

    import throughput as tp
    from agent_forge.plugin_host import load_plugins

    if a.ours_shape not in tp.SHAPES:
        raise SystemExit(f"unknown --ours-shape {a.ours_shape!r}; choose from {sorted(tp.SHAPES)}")
    host = load_plugins(entry_points=False)
    variant, overrides = tp.SHAPES[a.ours_shape]
    overrides = [*overrides, *a.overrides] + ([f"trainer.threads={a.threads}"] if a.threads else [])
    ours = tp.build(host, variant, overrides)
    if ours.state.precision != "fp32":
        # The port runs fp32 on a CPU (its forward_dtype); another precision is other work.
        raise SystemExit(f"ours would run {ours.state.precision}; the port runs fp32 on CPU: drop the precision override")
    shape = shape_of(ours.cfg, ours.state.task.spec)
    port = PortProcess(venv, shape, port_env())
    try:
        info = port.ask("info")
        print(f"# nano-trm {info['nano_trm_version']} from {info['src']}, torch {info['torch']}"
              f" ({info['torch_file']}), {info['parameters']} parameters; ours: {variant} +"
              f" {' '.join(overrides)}, {sum(p.numel() for p in ours.state.model.parameters())} parameters;"
              f" load average {os.getloadavg()[0]:.2f}", flush=True)
        if info["torch_file"] != torch.__file__:
            print(f"# note: the port imports another torch than ours ({torch.__file__})", flush=True)
        port_flops = port.ask("flops")["flops"]
        eager = ours if not ours.cfg.trainer.compile else tp.build(host, variant, [*overrides, "trainer.compile=false"])
        our_flops = tp.count_flops(eager)
        port.ask("run", steps=a.warmup, threads=a.threads)
        tp.warm_up(ours, a.warmup)
        walls: dict[str, list[float]] = {"port": [], "ours": []}
        for r in range(a.rounds):
            walls["port"].append(port.ask("run", steps=a.steps, threads=a.threads)["wall_s"])
            walls["ours"].append(ours.timed(a.steps)[0])
            print(f"# round {r + 1}: port {walls['port'][-1]:.2f} s, ours {walls['ours'][-1]:.2f} s"
                  f" for {a.steps} steps each", file=sys.stderr, flush=True)
    finally:
        port.close()
    p_side = Side("nano-trm 0.1.0 (training_step + EMA)", shape["batch"], a.steps, tuple(walls["port"]),
                  port_flops / 1e9)
    o_side = Side(f"agent-forge ({a.ours_shape})", shape["batch"], a.steps, tuple(walls["ours"]), our_flops / 1e9)
    result = compare(p_side, o_side)
    print(table(p_side, o_side, result))
    print(f"# command: {command_line(argv)}; load average after {os.getloadavg()[0]:.2f}")
    print(json.dumps({"command": command_line(argv), "shape": shape, "ours_overrides": overrides, "port": info,
                      "ours_parameters": sum(p.numel() for p in ours.state.model.parameters()),
                      "walls_s": walls, "steps_per_block": a.steps, **result}))


if __name__ == "__main__":
    main()
