"""Built-in evaluators. Each reads the shared predictions from the EvalContext.

* ``exact``: fraction of samples whose whole answer is right after all supervision steps.
* ``token``: accuracy on the positions the task asks for — the blank cells of a puzzle
  (``TaskSpec.info["blank_token"]``), every scored target otherwise.
* ``halting``: where the Q-head would stop: mean halting step, exact accuracy of the answer at
  that step, and how often ``q_halt > 0`` agrees with "the final answer is right". A model
  without a halting head (``q_halt_logits`` is None, e.g. a TRM trained without ``act``) has no
  such figures: the evaluator logs "no halting head" once and reports nothing.
* ``official``: the official TRM code's ``accuracy`` and ``exact_accuracy``, by its definitions,
  as ``official_accuracy`` and ``official_exact_accuracy``.
* ``loss``: mean token cross-entropy at the last step, and its perplexity; on text (a task with
  ``token_bytes``) also ``bits_per_byte``: the cross-entropy summed over the targets that are text,
  in bits, over the bytes they stand for (end-of-document tokens count in neither, as in nanochat's
  ``evaluate_bpb``), which compares across tokenizers where perplexity does not. During training it is
  the cross-entropy the model trains with (``trainer.loss``: softmax or stable-max); elsewhere
  (``forge eval``, EvoMerge) softmax.
* ``samples`` (causal LM tasks): greedy continuations of the first eval windows. The texts go to
  ``samples.json``; the metrics say how often the continuation matched the real text token for
  token, and how varied it is (distinct bigrams), which catches a model stuck repeating itself.
"""

from __future__ import annotations

import math
from typing import Any, Callable

import torch

from agent_forge import hookimpl
from agent_forge.specs import EvaluatorSpec


def _scored(task: Any, split: Any) -> torch.Tensor:
    mask = split.targets != task.spec.ignore_index
    blank = task.spec.info.get("blank_token")
    if blank is not None:
        mask &= split.inputs == blank
    return mask


def exact(model: Any, task: Any, ctx: Any) -> dict[str, float]:
    p = ctx.predictions()
    split = getattr(task, ctx.split)
    valid = split.targets != task.spec.ignore_index
    correct = ((p.final == split.targets) | ~valid).all(1)
    return {"exact_accuracy": float(correct.float().mean())}


def token(model: Any, task: Any, ctx: Any) -> dict[str, float]:
    p = ctx.predictions()
    split = getattr(task, ctx.split)
    mask = _scored(task, split)
    right = (p.final == split.targets) & mask
    return {"token_accuracy": float(right.sum()) / max(int(mask.sum()), 1)}


_NO_HEAD_NOTED: set[str] = set()


def halting(model: Any, task: Any, ctx: Any) -> dict[str, float]:
    p = ctx.predictions()
    if not p.halting_head:
        # Not n_sup "halting steps" or accuracies of a decision nobody makes: nothing, and why.
        name = type(model).__name__
        if name not in _NO_HEAD_NOTED:
            from agent_forge.logging import get_logger

            _NO_HEAD_NOTED.add(name)
            get_logger().info("evaluator.halting", note="no halting head: the model returns no q_halt_logits"
                              " (model.halting_head=false, or no Q-head); no halting metrics", model=name)
        return {}
    split = getattr(task, ctx.split)
    valid = split.targets != task.spec.ignore_index
    final_ok = ((p.final == split.targets) | ~valid).all(1)
    halt_ok = ((p.at_halt == split.targets) | ~valid).all(1)
    return {
        "mean_halt_steps": float(p.halt_step.float().mean()),
        "halt_exact_accuracy": float(halt_ok.float().mean()),
        "halting_accuracy": float(((p.q_halt_final > 0) == final_ok).float().mean()),
    }


def official(model: Any, task: Any, ctx: Any) -> dict[str, float]:
    """The official TRM code's two evaluation metrics, by its definitions (``models/losses.py``):
    over the examples with at least one labelled position, ``official_accuracy`` is the mean of
    each example's share of labelled positions predicted right, ``official_exact_accuracy`` the
    share with every labelled position right. Read at the last supervision step, as the official
    evaluation runs every step. Unlike ``token``, every labelled position counts (given cells
    included) and each example weighs the same."""
    p = ctx.predictions()
    split = getattr(task, ctx.split)
    labelled = split.targets != task.spec.ignore_index
    counts = labelled.sum(1)
    right = ((p.final == split.targets) & labelled).sum(1)
    scored = counts > 0  # the official code leaves an example with no label out of both sums
    n = max(int(scored.sum()), 1)
    per_example = right.double() / counts.clamp_min(1).double()
    return {"official_accuracy": float(per_example[scored].sum()) / n,
            "official_exact_accuracy": int(((right == counts) & scored).sum()) / n}


def loss(model: Any, task: Any, ctx: Any) -> dict[str, float]:
    p = ctx.predictions()
    out = {"eval_loss": p.loss, "perplexity": math.exp(min(p.loss, 50.0))}
    if p.bits_per_byte is not None:  # a text task that says how many bytes each token is
        out["bits_per_byte"] = p.bits_per_byte
    return out


SAMPLE_COUNT, SAMPLE_NEW_TOKENS = 4, 48


def samples(model: Any, task: Any, ctx: Any) -> dict[str, float]:
    from agent_forge.errors import ConfigError
    from agent_forge.phases.common.evaluation import generate_tokens, inference_steps

    if not task.spec.causal:
        raise ConfigError(f"evaluator 'samples' needs a causal (language-model) task; {task.spec.name!r} is not")
    split = getattr(task, ctx.split)
    seq_len = task.spec.seq_len
    prompt_len = max(1, seq_len // 4)
    k = min(SAMPLE_COUNT, len(split))
    new = min(SAMPLE_NEW_TOKENS, seq_len - prompt_len)
    prompt = split.inputs[:k, :prompt_len].long()
    truth = split.inputs[:k, prompt_len:prompt_len + new].long()
    out = generate_tokens(model, prompt, new, n_sup=ctx.n_sup or inference_steps(model), seq_len=seq_len,
                          device=ctx.device)
    render = task.render or (lambda t: " ".join(str(v) for v in t.tolist()))
    ctx.texts["samples"] = [{"prompt": render(p), "completion": render(c), "reference": render(r)}
                            for p, c, r in zip(prompt, out, truth)]
    bigrams = [tuple(pair) for row in out.tolist() for pair in zip(row, row[1:])]
    return {"sample_match_rate": float((out == truth).float().mean()),
            "sample_distinct_2": len(set(bigrams)) / max(len(bigrams), 1)}


@hookimpl
def forge_register_evaluators(register: Callable[[EvaluatorSpec], None]) -> None:
    for name, evaluate, description in (
        ("exact", exact, "Whole-answer accuracy after all supervision steps"),
        ("token", token, "Accuracy on blank cells (puzzles) or scored tokens"),
        ("halting", halting, "Mean halting step and accuracy of the Q-head's decision"),
        ("official", official, "The official TRM code's accuracy (per-example token accuracy, averaged over"
                               " examples) and exact_accuracy"),
        ("loss", loss, "Eval cross-entropy and perplexity"),
        ("samples", samples, "Greedy text continuations (samples.json), match rate, distinct bigrams"),
    ):
        register(EvaluatorSpec(name, evaluate, description=description))
