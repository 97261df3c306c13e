"""FLOPs per optimizer step (training: one supervision step, forward+backward, batch 16) and per
generated token's forward at inference (n_sup_inference steps on one 64-token window), per arm."""
import torch
from torch.utils.flop_counter import FlopCounterMode
from agent_forge.models.trm import TRMConfig, TRMEnhancedCognate

torch.set_num_threads(1)
for name, n, T, ns in (("control", 2, 1, 4), ("A_n3", 3, 1, 4), ("B_n3_T2", 3, 2, 4), ("C_n3_T2_nsup8", 3, 2, 8)):
    torch.manual_seed(0)
    cfg = TRMConfig(d_model=64, n_layers=2, n_heads=4, n_kv_heads=2, n=n, T=T, n_sup=ns, n_sup_inference=ns,
                    causal=True, halting_head=False)
    m = TRMEnhancedCognate(cfg, vocab_size=257, seq_len=64, causal=True)
    batch = {"inputs": torch.randint(0, 256, (16, 64))}
    with FlopCounterMode(display=False) as c:
        _, out = m(m.initial_carry(batch), batch)
        out.logits.float().logsumexp(-1).mean().backward()
    train = c.get_total_flops()
    one = {"inputs": batch["inputs"][:1]}
    with torch.no_grad(), FlopCounterMode(display=False) as c2:
        carry = m.initial_carry(one)
        for _ in range(ns):
            carry, out = m(carry, one)
    print(f"{name}: params {sum(p.numel() for p in m.parameters())}, train step {train/1e9:.3f} GFLOP,"
          f" 80 steps {80*train/1e9:.1f} GFLOP, eval per 64-token window {c2.get_total_flops()/1e6:.1f} MFLOP")
