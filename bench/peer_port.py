"""The port's side of ``bench/peer.py``: nano-trm's own training step, driven over a pipe.

Runs under the side environment's Python (torch and the installed ``nano-trm`` package, whose
top-level package is ``src``); it imports nothing of agent-forge. ``bench/peer.py`` starts it once
and sends one JSON command per line on stdin; each answer is one JSON line on stdout:

* ``{"cmd": "info"}`` -> parameters, nano-trm's version and where ``src`` was imported from;
* ``{"cmd": "flops"}`` -> FLOPs of one training step (``torch.utils.flop_counter``);
* ``{"cmd": "run", "steps": K, "threads": T}`` -> wall and process-CPU seconds of K steps;
* ``{"cmd": "quit"}``.

One step is the port's ``TRMModule.training_step`` (its forward with the carry and halting, its
stable-max loss, backward, gradient clipping, its learning-rate schedule and AdamW step, its
gradient monitoring every 50 steps) followed by its ``EMACallback.on_train_batch_end`` (the
6x6 experiment enables EMA): what a Lightning ``Trainer`` calls per batch, without the Trainer,
its progress bar, loggers or data loader. Batches are synthetic, built before timing and reused
in turn, so no data loading is counted (ours counts its data refill: the port gets that much
advantage).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from importlib import metadata
from typing import Any

import torch
from torch.utils.flop_counter import FlopCounterMode


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--d-model", type=int, required=True)
    p.add_argument("--layers", type=int, required=True)
    p.add_argument("--n", type=int, required=True, help="our n: the port's L_cycles")
    p.add_argument("--T", type=int, required=True, help="our T: the port's H_cycles")
    p.add_argument("--n-sup", type=int, required=True)
    p.add_argument("--batch", type=int, required=True)
    p.add_argument("--seq-len", type=int, required=True)
    p.add_argument("--vocab", type=int, required=True)
    p.add_argument("--expansion", type=float, required=True)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--pool", type=int, default=4, help="synthetic batches, used in turn")
    return p.parse_args(argv)


class PortStep:
    """The port's model, optimizer and EMA, set up as its 6x6 experiment with our shape."""

    def __init__(self, a: argparse.Namespace) -> None:
        from src.nn.callbacks.ema import EMACallback
        from src.nn.models.trm import TRMModule

        torch.manual_seed(a.seed)
        # Values not given by the shape are the port's trm_sudoku_6x6_medium experiment's.
        self.model = TRMModule(
            hidden_size=a.d_model, num_layers=a.layers, num_heads=max(1, a.d_model // 64),
            max_grid_size=int(round(a.seq_len ** 0.5)), H_cycles=a.T, L_cycles=a.n,
            N_supervision=a.n_sup, N_supervision_val=a.n_sup, ffn_expansion=a.expansion,
            learning_rate=1e-4, learning_rate_emb=1e-4, weight_decay=1.0, warmup_steps=2000,
            halt_exploration_prob=0.1, puzzle_emb_dim=0, puzzle_emb_len=0, pos_emb_type=None,
            use_mlp_t=True, lr_min_ratio=0.01, vocab_size=a.vocab, num_puzzles=1,
            batch_size=a.batch, pad_value=0, seq_len=a.seq_len, forward_dtype=torch.float32)
        self.model.train()
        # What Lightning's setup() and Trainer would provide.
        self.model.total_steps = 10**9
        self.model._optimizers = self.model.configure_optimizers()
        self.ema = EMACallback(decay=0.999)
        self.ema.on_fit_start(None, self.model)
        g = torch.Generator().manual_seed(a.seed)
        self.batches = [{"input": torch.randint(0, a.vocab, (a.batch, a.seq_len), generator=g),
                         "output": torch.randint(1, a.vocab, (a.batch, a.seq_len), generator=g),
                         "puzzle_identifiers": torch.zeros(a.batch, dtype=torch.long)}
                        for _ in range(a.pool)]
        self.i = 0

    def step(self) -> None:
        batch = self.batches[self.i % len(self.batches)]
        self.model.training_step(batch, self.i)
        self.ema.on_train_batch_end(None, self.model, None, batch, self.i)
        self.i += 1

    def run(self, steps: int, threads: int | None) -> dict[str, float]:
        if threads:
            torch.set_num_threads(threads)
        wall, cpu = time.perf_counter(), time.process_time()
        for _ in range(steps):
            self.step()
        return {"wall_s": time.perf_counter() - wall, "cpu_s": time.process_time() - cpu, "steps": steps}

    def flops(self) -> float:
        with FlopCounterMode(display=False) as counter:
            self.step()
        return float(counter.get_total_flops())

    def info(self) -> dict[str, Any]:
        import src

        try:
            version = metadata.version("nano-trm")
        except metadata.PackageNotFoundError:
            version = None
        return {"nano_trm_version": version, "src": os.path.dirname(src.__file__), "torch": torch.__version__,
                "torch_file": torch.__file__, "threads": torch.get_num_threads(),
                "parameters": sum(p.numel() for p in self.model.parameters())}


def serve(port: PortStep, lines, out) -> None:
    """Answer one JSON command per input line until ``quit`` or end of input."""
    for line in lines:
        cmd = json.loads(line)
        if cmd["cmd"] == "quit":
            break
        if cmd["cmd"] == "run":
            reply: dict[str, Any] = port.run(int(cmd["steps"]), cmd.get("threads"))
        elif cmd["cmd"] == "flops":
            reply = {"flops": port.flops()}
        elif cmd["cmd"] == "info":
            reply = port.info()
        else:
            reply = {"error": f"unknown command {cmd['cmd']!r}"}
        out.write(json.dumps(reply) + "\n")
        out.flush()


def main() -> None:
    # The port prints to stdout ("Failed to import adam2", "Manually casting TRM ..."): keep the
    # real stdout for the protocol and send everything else, C-level writes too, to stderr.
    protocol = os.fdopen(os.dup(1), "w", buffering=1)
    os.dup2(2, 1)
    sys.stdout = sys.stderr
    port = PortStep(parse_args())
    protocol.write(json.dumps({"ready": True}) + "\n")
    protocol.flush()
    serve(port, sys.stdin, protocol)


if __name__ == "__main__":
    main()
