"""Built-in variants: complete Cognate configs, registered like any plugin's.

The CPU presets are sized to train on 2 cores in minutes; every field is an override away
(``--set model.d_model=512``). ``trm_paper``/``trm_paper_attention`` are the paper's 9x9 Sudoku
shapes, ``trm_maze`` its Maze-Hard model and ``trm_arc`` its ARC-AGI-1 model (GPU scale), with the
official code's details on.
The ``lm_*`` presets are causal language models (configs A-D of seed 002).
"""

from __future__ import annotations

from typing import Any, Callable

from agent_forge import hookimpl
from agent_forge.phases.cognate.hookspecs import VariantSpec

SUDOKU6 = {"name": "sudoku6"}
PUZZLE_EVALUATORS = ["exact", "token", "halting"]

# The trainer settings every CPU puzzle preset starts from (tuned on 6x6 Sudoku, see
# docs/performance.md): small batches for many updates, a high peak lr annealed by a cosine over
# the time budget, and EMA weights for evaluation. 8.5 minutes of training leaves room for data
# generation and the final evaluation inside 10 minutes. compile "auto": torch.compile the step when
# the run is long enough to pay the compile back (1.47x for trm_small's step). The evaluations
# during training are a curve to watch (the final one is complete): 100 rows every 500 steps cost
# ~1.5% of the training time, 200 every 200 cost 7.4% (docs/performance.md, "Time to accuracy").
CPU_TRAINER: dict[str, Any] = {
    "batch_size": 128, "lr": 3e-3, "weight_decay": 0.1, "warmup_steps": 50, "minutes": 8.5,
    "schedule": "cosine", "precision": "auto", "log_every": 25, "eval_every": 500, "eval_samples": 100,
    "compile": "auto",
}


def trm(layers: int, n: int, T: int, n_sup: int = 16, memory: str = "none", d_model: int = 64,
        mixer: str = "attention", heads: int = 4, task: dict[str, Any] = SUDOKU6,
        trainer: dict[str, Any] | None = None, learned_positions: bool = True) -> dict[str, Any]:
    callbacks: dict[str, Any] = {"ema": {"decay": 0.999}, "act": {}}
    if memory != "none":
        callbacks["memory"] = {}
    return {
        "model": {"architecture": "trm", "d_model": d_model, "n_layers": layers, "n_heads": heads,
                  "n": n, "T": T, "n_sup": n_sup, "mixer": mixer, "memory": memory,
                  "learned_positions": learned_positions},
        "task": dict(task),
        "trainer": {**CPU_TRAINER, **(trainer or {})},
        "callbacks": callbacks,
        "evaluators": PUZZLE_EVALUATORS + (["arc_vote"] if task.get("name") == "arc" else []),
    }


def official(spec: dict[str, Any], *, epochs: int, puzzle_emb_lr: float, puzzle_emb_weight_decay: float,
             **model: Any) -> dict[str, Any]:
    """A paper preset: the official TRM code's recipe (docs/cognate.md, "Differences from the
    official code"): a 16-position puzzle-embedding prefix trained by sign-SGD outside EMA,
    stable-max cross-entropy, AdamATan2 with weight decay on every parameter and no gradient
    clipping, a constant lr after warm-up (its lr_min_ratio 1.0), the official epoch count as the
    budget, torch.compile, EMA without warm-up (and handed off), and the minimum halting step
    redrawn at every step."""
    spec["model"].update({"puzzle_emb_len": 16, "puzzle_emb_sparse": True, **model})
    spec["trainer"].pop("minutes", None)
    spec["trainer"].update({"loss": "stablemax", "schedule": "constant", "puzzle_emb_lr": puzzle_emb_lr,
                            "puzzle_emb_weight_decay": puzzle_emb_weight_decay, "epochs": epochs,
                            "optimizer": "adam_atan2", "decay_all": True, "grad_clip": None, "compile": True})
    spec["callbacks"]["ema"]["warmup"] = False
    spec["callbacks"]["act"]["exploration"] = "per_step"
    return spec


def lm(layers: int, width: int, heads: int, n: int, n_sup: int, head_dim: int | None = None, T: int = 2,
       seq_len: int = 1024) -> dict[str, Any]:
    """A causal-LM preset as seed 002 writes its GPTConfig: ``n_sup_inference`` matches ``n_sup``
    ("match training"), and the trainer has its two refinement terms on: hierarchical step
    weighting (``supervision_weight_base`` 5.0) and the improvement penalty
    (``improvement_reward_scale`` 1.0); docs/cognate.md gives both formulas."""
    # No ACT on text (a whole-sequence "answer right" target means nothing there), so no halting
    # head either: every sample runs all n_sup steps, and no parameter is left without a gradient.
    # Memory (docs/performance.md, "Memory"): the loss computes the 50,304-way logits in chunks
    # (defer_logits), and the graded cycle's blocks are recomputed in the backward pass instead of
    # keeping ~1.9 GB of activations per sequence (checkpoint_blocks); with a device that has the
    # memory, --set model.checkpoint_blocks=false is ~1/3 less compute per step.
    return {
        "model": {"architecture": "trm", "d_model": width, "n_layers": layers, "n_heads": heads, "n_kv_heads": 4,
                  "head_dim": head_dim,
                  "n": n, "T": T, "n_sup": n_sup, "n_sup_inference": n_sup, "mixer": "attention", "causal": True,
                  "halting_head": False,
                  "defer_logits": True, "checkpoint_blocks": True},
        "task": {"name": "text", "vocab_size": 50304, "seq_len": seq_len},
        "trainer": {"batch_size": 8, "lr": 3e-4, "weight_decay": 0.1, "warmup_steps": 200, "minutes": 60.0,
                    "precision": "auto", "eval_every": 500, "eval_samples": 64, "eval_batch_size": 8,
                    "supervision_weight_base": 5.0, "improvement_reward_scale": 1.0},
        "callbacks": {"ema": {"decay": 0.999}},
        "evaluators": ["loss", "token", "samples"],
    }


VARIANTS: dict[str, tuple[dict[str, Any], str]] = {
    "baseline": ({
        "model": {"architecture": "transformer", "d_model": 64, "n_layers": 11, "n_heads": 4,
                  "learned_positions": True},
        "task": dict(SUDOKU6),
        "trainer": dict(CPU_TRAINER),
        "callbacks": {},
        "evaluators": PUZZLE_EVALUATORS,
    }, "The non-recursive control: 11 layers applied once, no EMA, no halting"),
    "baseline_moh": ({
        "model": {"architecture": "transformer", "d_model": 64, "n_layers": 11, "n_heads": 4,
                  "learned_positions": True, "mixer": "moh"},
        "task": dict(SUDOKU6),
        "trainer": dict(CPU_TRAINER),
        "callbacks": {},
        "evaluators": PUZZLE_EVALUATORS,
    }, "The baseline with Mixture-of-Heads attention (seed 000's Transformer+MoH)"),
    "trm_tiny": (trm(2, 6, 3), "2 layers, n=6, T=3: the paper's recursion at CPU width"),
    # The default, tuned to reach >= 95% exact on 6x6 Sudoku inside 10 minutes on 2 CPU cores:
    # shallower recursion per step (n=2, T=2) and 8 supervision steps train faster here than the
    # design table's 4 layers, n=3, T=3, 16 steps with memory (docs/performance.md).
    "trm_small": (trm(2, 2, 2, n_sup=8), "The default: 2 layers, n=2, T=2, 8 supervision steps, d=64"),
    # Seed 000's TRM+MoH: trm_small with Mixture-of-Heads attention (aux weights 0.1/0.1/0.01 by
    # default, model.moh_*_weight); baseline_moh is its Transformer+MoH control.
    "trm_moh": (trm(2, 2, 2, n_sup=8, mixer="moh"),
                "trm_small with Mixture-of-Heads attention: each token routes to a learned subset of heads"),
    "trm_medium": (trm(6, 2, 3, memory="latent"), "6 layers, n=2, T=3, memory read into z"),
    "trm_hybrid": (trm(6, 2, 3, memory="full"), "6 layers, n=2, T=3, memory read into z and y"),
    # The official README's commands: Sudoku-Extreme with mlp_t and pos_encodings=none, and with
    # attention (RoPE); epochs 50,000 (65,104 optimizer steps on its 1,000 puzzles at batch 768),
    # lr 1e-4, weight decay 1.0, puzzle_emb_lr 1e-4, puzzle_emb_weight_decay 1.0.
    "trm_paper": (official(trm(2, 6, 3, d_model=512, mixer="mlp_official", heads=8, task={"name": "sudoku9"},
                               learned_positions=False,
                               trainer={"batch_size": 768, "lr": 1e-4, "weight_decay": 1.0, "warmup_steps": 2000}),
                           epochs=50_000, puzzle_emb_lr=1e-4, puzzle_emb_weight_decay=1.0, rope=False),
                  "The paper's 9x9 Sudoku model: d=512, the official MLP token mixing (~5M parameters); GPU scale"),
    "trm_paper_attention": (official(trm(2, 6, 3, d_model=512, mixer="attention", heads=8, task={"name": "sudoku9"},
                                         learned_positions=False,
                                         trainer={"batch_size": 768, "lr": 1e-4, "weight_decay": 1.0,
                                                  "warmup_steps": 2000}),
                                     epochs=50_000, puzzle_emb_lr=1e-4, puzzle_emb_weight_decay=1.0),
                            "trm_paper with self-attention instead of MLP mixing (~7M parameters)"),
    # ARC-AGI-1 as the README runs it: L_layers 2, H_cycles 3 (T), L_cycles 4 (n); the other
    # values from cfg_pretrain.yaml: epochs 100,000, lr 1e-4, weight decay 0.1, puzzle_emb_lr 1e-2, its decay 0.1.
    "trm_arc": (official(trm(2, 4, 3, d_model=512, heads=8, task={"name": "arc"}, learned_positions=False,
                             trainer={"batch_size": 768, "lr": 1e-4, "weight_decay": 0.1, "warmup_steps": 2000,
                                      "eval_batch_size": 64}),
                         epochs=100_000, puzzle_emb_lr=1e-2, puzzle_emb_weight_decay=0.1),
                "ARC-AGI-1 (optional extra 'arc'): the paper's attention TRM (n=4, T=3) with puzzle embeddings;"
                " GPU scale"),
    # Maze-Hard as the README runs it: attention, L_layers 2, H_cycles 3 (T), L_cycles 4 (n), epochs
    # 50,000, lr 1e-4, weight decay 1.0, puzzle_emb_lr 1e-4 and its decay 1.0; 30x30 mazes (the public
    # set's side).
    "trm_maze": (official(trm(2, 4, 3, d_model=512, heads=8, task={"name": "maze", "size": 30},
                              learned_positions=False,
                              trainer={"batch_size": 768, "lr": 1e-4, "weight_decay": 1.0, "warmup_steps": 2000,
                                       "eval_batch_size": 64}),
                          epochs=50_000, puzzle_emb_lr=1e-4, puzzle_emb_weight_decay=1.0),
                 "Maze-Hard (30x30): the paper's attention TRM (n=4, T=3); GPU scale"),
    "lm_conservative": (lm(12, 768, 12, 3, 8), "Causal LM, config A: 12 layers, width 768"),
    # 1024 is not divisible by 12 heads: heads of width 64 (attention width 768), as in seed 002.
    "lm_balanced": (lm(16, 1024, 12, 4, 8, head_dim=64), "Causal LM, config B: 16 layers, width 1024"),
    "lm_aggressive": (lm(20, 1024, 12, 4, 12, head_dim=64), "Causal LM, config C: 20 layers, width 1024"),
    "lm_cloud": (lm(24, 1536, 16, 4, 12, seq_len=2048), "Causal LM, config D: 24 layers, width 1536, 2048 tokens"),
    # Seed 002's "current" model, the control of its experiments A-C: config A's shape with n=2,
    # T=1, N_sup=4 (the recursion the seed starts from).
    "lm_baseline_70m": (lm(12, 768, 12, 2, 4, T=1), "Causal LM, seed 002's control: config A's width, n=2, T=1,"
                                                   " N_sup=4"),
}


@hookimpl
def forge_register_variants(register: Callable[[VariantSpec], None]) -> None:
    for name, (spec, description) in VARIANTS.items():
        register(VariantSpec(name, spec, description=description))
