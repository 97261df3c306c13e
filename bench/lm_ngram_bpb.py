"""Bits per byte of a unigram and a bigram byte model on the held-out windows of a text task: the
levels an LM run is compared against (docs/performance.md, seed 002's experiments).

    .venv/bin/python bench/lm_ngram_bpb.py [--seq-len 64] [--max-documents 3000] [--seed 0]

Both models are add-one (Laplace) smoothed counts of the training windows' target bytes (the
bigram: of each target byte after its input byte), nothing tuned; scored on the eval split's
text targets (end-of-document tokens count in neither the bits nor the bytes, as the ``loss``
evaluator's ``bits_per_byte``). The bigram sees one byte of context, the unigram none.
"""
import argparse
import math

import torch

from agent_forge.plugins.datasets.text import TextConfig, build_text

parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
parser.add_argument("--seq-len", type=int, default=64)
parser.add_argument("--max-documents", type=int, default=3000)
parser.add_argument("--seed", type=int, default=0, help="data seed (which documents are held out)")
args = parser.parse_args()

V = 257
d = build_text(TextConfig(seq_len=args.seq_len, vocab_size=V, max_documents=args.max_documents), seed=args.seed)
x, y = d.train.inputs.flatten(), d.train.targets.flatten()
uni = torch.bincount(y, minlength=V).double() + 1
uni_logp = (uni / uni.sum()).log()
bi = torch.bincount(x * V + y, minlength=V * V).double().view(V, V) + 1
bi_logp = (bi / bi.sum(1, keepdim=True)).log()

ex, ey = d.eval.inputs.flatten(), d.eval.targets.flatten()
text = ey < 256
bits = lambda nats: float(nats / math.log(2) / text.sum())  # noqa: E731
print(f"train windows {len(d.train)}, eval windows {len(d.eval)} of {args.seq_len} bytes,"
      f" {int(text.sum())} held-out bytes")
print(f"unigram bits/byte on eval: {bits(-uni_logp[ey][text].sum()):.4f}")
print(f"bigram  bits/byte on eval: {bits(-bi_logp[ex, ey][text].sum()):.4f}")
