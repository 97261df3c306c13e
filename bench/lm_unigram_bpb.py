"""Bits per byte of a unigram model (add-one byte counts of the training split) on the held-out
windows of the lm-seed002 experiment's text task: the plateau the arms are compared against."""
import math, torch
from agent_forge.plugins.datasets.text import TextConfig, build_text
d = build_text(TextConfig(seq_len=64, vocab_size=257, max_documents=3000), seed=0)
counts = torch.bincount(d.train.targets.flatten(), minlength=257).double() + 1  # add-one
logp = (counts / counts.sum()).log()
t = d.eval.targets.flatten()
text = t < 256
nats = -logp[t][text].sum()
print("eval windows", len(d.eval), "unigram (train counts) bits/byte on eval:", float(nats / math.log(2) / text.sum()))
