"""Why seed 002's shrunk LM stayed at the unigram level: the carried (y, z) of deep supervision.

    .venv/bin/python bench/lm_carry_plateau.py carry            # as the trainer: (y, z) carried across N_sup steps
    .venv/bin/python bench/lm_carry_plateau.py fresh            # the same batches, (y, z) restarted every step
    .venv/bin/python bench/lm_carry_plateau.py carry --step-scales

A plain training loop (AdamW, lr 2e-3, weight decay 0.1, no warm-up, no step weighting) on the
control of ``forge ablate --arms lm-seed002`` shrunk as in docs/performance.md (d=64, 2 layers, n=2,
T=1, byte tokens, windows of 64 of the stdlib docstrings): each batch of ``--batch`` windows is
trained for ``--n-sup`` consecutive steps, as the trainer does with a row until it is refilled.
Prints the training batch's cross-entropy in bits per token every 25 steps (not a held-out figure).
"""
import argparse
import math

import torch

from agent_forge.models.trm import TRMConfig, TRMEnhancedCognate
from agent_forge.plugins.datasets.text import TextConfig, build_text

parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
parser.add_argument("mode", choices=["carry", "fresh"])
parser.add_argument("--n-sup", type=int, default=4)
parser.add_argument("--batch", type=int, default=16)
parser.add_argument("--lr", type=float, default=2e-3)
parser.add_argument("--steps", type=int, default=200)
parser.add_argument("--step-scales", action="store_true", help="model.step_scales=true")
args = parser.parse_args()

torch.set_num_threads(1)
torch.manual_seed(0)
data = build_text(TextConfig(seq_len=64, vocab_size=257, max_documents=3000), seed=0)
model = TRMEnhancedCognate(TRMConfig(d_model=64, n_layers=2, n_heads=4, n_kv_heads=2, n=2, T=1, n_sup=args.n_sup,
                                     causal=True, halting_head=False, step_scales=args.step_scales),
                           vocab_size=257, seq_len=64, causal=True)
opt = torch.optim.AdamW(model.parameters(), lr=args.lr, weight_decay=0.1)
g = torch.Generator().manual_seed(0)
for step in range(1, args.steps + 1):
    if (step - 1) % args.n_sup == 0:  # a fresh batch every n_sup steps, (y, z) from their fixed start
        rows = torch.randint(0, len(data.train), (args.batch,), generator=g)
        batch = {"inputs": data.train.inputs[rows]}
        carry = model.initial_carry(batch)
    if args.mode == "fresh":
        carry = model.initial_carry(batch)
    carry, out = model(carry, batch)
    loss = torch.nn.functional.cross_entropy(out.logits.reshape(-1, 257), data.train.targets[rows].reshape(-1))
    opt.zero_grad()
    loss.backward()
    opt.step()
    if step % 25 == 0:
        print(step, round(loss.item() / math.log(2), 3), flush=True)
