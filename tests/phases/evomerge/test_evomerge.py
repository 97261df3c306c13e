import pytest
import torch

from agent_forge import Pipeline
from agent_forge.phases.evomerge.phase import linear, slerp, ties
from forge_testing import TINY


def _states():
    g = torch.Generator().manual_seed(0)
    return [{"w": torch.randn(4, 4, generator=g), "step": torch.tensor(3)} for _ in range(3)]


def test_linear_is_the_mean():
    s = _states()
    torch.testing.assert_close(linear(s)["w"], (s[0]["w"] + s[1]["w"] + s[2]["w"]) / 3)


def test_slerp_endpoints_and_norm():
    a, b = _states()[:2]
    torch.testing.assert_close(slerp(a, b, 0.0)["w"], a["w"])
    torch.testing.assert_close(slerp(a, b, 1.0)["w"], b["w"])
    assert torch.equal(slerp(a, b, 0.5)["step"], a["step"])  # non-float tensors are carried over


def test_ties_keeps_only_agreeing_signs():
    base = torch.zeros(4)
    states = [{"w": torch.tensor([1.0, 1.0, -1.0, 0.1])}, {"w": torch.tensor([1.0, -3.0, -1.0, 0.1])},
              {"w": base.clone()}]
    merged = ties(states, density=1.0)["w"]
    mean = linear(states)["w"]
    deltas = torch.stack([s["w"] - mean for s in states])
    sign = torch.sign(deltas.sum(0))
    agree = (torch.sign(deltas) == sign) & (deltas != 0)
    expected = mean + (deltas * agree).sum(0) / agree.sum(0).clamp(min=1)
    torch.testing.assert_close(merged, expected)


def test_pipeline_cognate_then_evomerge(tmp_path, host):
    results = Pipeline(["cognate", "evomerge"], host=host).run(
        per_phase={"cognate": {"overrides": tuple(TINY)}, "evomerge": {"overrides": ("eval_samples=16",)}},
        variant="trm_tiny", max_steps=3, models=2, progress=False, out=tmp_path / "p")
    cognate, merge = results
    assert merge.status == "completed"
    (art,) = merge.artifacts
    assert set(art.artifact.parents) == {a.artifact.id for a in cognate.artifacts}
    candidates = [c["candidate"] for c in merge.details["candidates"]]
    assert len(candidates) == 5 and "linear" in candidates  # 2 inputs + linear + slerp + ties
    best = max(c["exact_accuracy"] for c in merge.details["candidates"])
    assert merge.metrics["exact_accuracy"] == best


def test_evomerge_without_inputs_says_what_to_do(tmp_path, host):
    with pytest.raises(Exception, match="no input models"):
        Pipeline(["evomerge"], host=host).run(progress=False, out=tmp_path / "e")
