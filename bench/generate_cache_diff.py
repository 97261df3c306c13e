"""The largest |logit difference| between cached and uncached greedy decoding, per configuration of
``tests/models/test_decode_cache.py`` (the test only bounds it by 1e-4; this prints it)::

    .venv/bin/python bench/generate_cache_diff.py
"""

from __future__ import annotations

import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests" / "models"))
import test_decode_cache as cases  # noqa: E402  (the test's configurations, models and prompt)

from agent_forge.phases.common import evaluation  # noqa: E402


def main() -> None:
    worst = 0.0
    choose = evaluation.next_token
    for name, kw in cases.CONFIGS.items():
        model = cases._model(**kw)
        prompt = torch.randint(0, cases.VOCAB, (2, 3), generator=torch.Generator().manual_seed(2))
        logits: dict[bool, list[torch.Tensor]] = {}
        for cache in (False, True):
            seen = logits[cache] = []
            evaluation.next_token = lambda lg, seen=seen, **k: seen.append(lg) or choose(lg, **k)
            try:
                evaluation.generate_tokens(model, prompt, 14, n_sup=kw["n_sup"], seq_len=12,
                                           device=torch.device("cpu"), cache=cache)
            finally:
                evaluation.next_token = choose
        diff = (torch.stack(logits[True]) - torch.stack(logits[False])).abs().max().item()
        worst = max(worst, diff)
        print(f"{name}: max |logit diff| {diff:.2e}")
    print(f"largest: {worst:.2e}")


if __name__ == "__main__":
    main()
