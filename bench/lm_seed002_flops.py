"""FLOPs of seed 002's arms (``forge ablate --arms lm-seed002``) at a shrunk shape: per optimizer
step (training runs one supervision step, forward + backward, on ``--batch`` rows), over
``--steps`` steps (or each arm's own, ``--arm-steps control=366,A_n3=282,...``: what
``forge ablate --equal-time`` gave them), and per held-out window at evaluation
(``n_sup_inference`` steps forward). Matrix products only (``torch.utils.flop_counter``).

    .venv/bin/python bench/lm_seed002_flops.py [--d-model 64 --layers 2 --heads 4 --kv-heads 2]
                                               [--seq-len 64 --batch 16 --steps 80 --step-scales]
                                               [--arm-steps control=N,A_n3=N,B_n3_T2=N,C_n3_T2_nsup8=N]
"""
import argparse

import torch
from torch.utils.flop_counter import FlopCounterMode

from agent_forge.models.trm import TRMConfig, TRMEnhancedCognate

parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
for flag, default in (("--d-model", 64), ("--layers", 2), ("--heads", 4), ("--kv-heads", 2), ("--seq-len", 64),
                      ("--batch", 16), ("--steps", 80), ("--vocab", 257)):
    parser.add_argument(flag, type=int, default=default)
parser.add_argument("--step-scales", action="store_true", help="model.step_scales=true (2 parameters per layer"
                                                                " and position in the cycle; no matrix product)")
parser.add_argument("--arm-steps", default="", help="each arm's steps, ARM=N,... (the others take --steps)")
args = parser.parse_args()
arm_steps = {k: int(v) for k, v in (part.split("=") for part in args.arm_steps.split(",") if part)}

torch.set_num_threads(1)
for name, n, T, ns in (("control", 2, 1, 4), ("A_n3", 3, 1, 4), ("B_n3_T2", 3, 2, 4), ("C_n3_T2_nsup8", 3, 2, 8)):
    torch.manual_seed(0)
    cfg = TRMConfig(d_model=args.d_model, n_layers=args.layers, n_heads=args.heads, n_kv_heads=args.kv_heads,
                    n=n, T=T, n_sup=ns, n_sup_inference=ns, causal=True, halting_head=False,
                    step_scales=args.step_scales)
    m = TRMEnhancedCognate(cfg, vocab_size=args.vocab, seq_len=args.seq_len, causal=True)
    batch = {"inputs": torch.randint(0, 256, (args.batch, args.seq_len))}
    with FlopCounterMode(display=False) as c:
        _, out = m(m.initial_carry(batch), batch)
        out.logits.float().logsumexp(-1).mean().backward()
    train = c.get_total_flops()
    one = {"inputs": batch["inputs"][:1]}
    with torch.no_grad(), FlopCounterMode(display=False) as c2:
        carry = m.initial_carry(one)
        for _ in range(ns):
            carry, out = m(carry, one)
    steps = arm_steps.get(name, args.steps)
    print(f"{name}: params {sum(p.numel() for p in m.parameters())}, train step {train / 1e9:.3f} GFLOP,"
          f" {steps} steps {steps * train / 1e9:.1f} GFLOP,"
          f" eval per {args.seq_len}-token window {c2.get_total_flops() / 1e6:.1f} MFLOP")
