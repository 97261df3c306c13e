"""Refill gives a refilled row the initial carry; every other row keeps the carry it was handed.

Run through the public API only (``run_phase`` with a host that has an inline test plugin): a
probe architecture that follows the model protocol records, per training call, the carry rows it
received and the inputs, and returns a carry that names the call and the row's input; a callback
halts a changing subset of rows on top of the step limit (n_sup=3), so rows are refilled at
different steps and the merge must be per row.
"""

from __future__ import annotations

import torch
from forge_testing import TINY
from pydantic import BaseModel, ConfigDict
from torch import nn

from agent_forge import hookimpl, run_phase
from agent_forge.models.protocol import ModelOutput
from agent_forge.plugin_host import load_plugins
from agent_forge.phases.cognate import Callback, CallbackSpec
from agent_forge.specs import ArchitectureSpec

N_SUP = 3
STEPS = 10


class ProbeConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")
    n_sup: int = N_SUP


class HaltConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")


class CarryProbe(nn.Module):
    """Carry: ``count`` (steps this carry has been through) and ``seen`` (the inputs of the row at
    the step that returned it). The initial carry is count 0 and seen -1 everywhere."""

    def __init__(self, cfg: ProbeConfig, task) -> None:
        super().__init__()
        self.n_sup = cfg.n_sup
        self.vocab = task.vocab_size
        self.bias = nn.Parameter(torch.zeros(task.vocab_size))
        self.calls: list[dict] = []

    def initial_carry(self, batch):
        b, s = batch["inputs"].shape
        return {"count": torch.zeros(b), "seen": torch.full((b, s), -1.0)}

    def forward(self, carry, batch):
        inputs = batch["inputs"]
        new = {"count": carry["count"] + 1, "seen": inputs.float()}
        if self.training:  # the final evaluation's calls are not training steps
            self.calls.append({"received": {k: v.detach().clone() for k, v in carry.items()},
                               "inputs": inputs.clone(), "returned": {k: v.clone() for k, v in new.items()}})
        b, s = inputs.shape
        return new, ModelOutput(logits=self.bias.expand(b, s, self.vocab))


class HaltSome(Callback):
    """Halts rows (index + step) % 4 == 0 besides the step limit, and records every step's decision."""

    def __init__(self, cfg, halted: list[torch.Tensor]) -> None:
        self.halted = halted

    def on_halt(self, trainer, state) -> None:
        rows = torch.arange(state.halted.shape[0])
        state.halted = state.halted | ((rows + state.step) % 4 == 0)
        self.halted.append(state.halted.clone())


def _run(tmp_path):
    models: list[CarryProbe] = []
    halted: list[torch.Tensor] = []

    class ProbePlugin:
        @hookimpl
        def forge_register_architectures(self, register):
            def build(cfg, task):
                models.append(CarryProbe(cfg, task))
                return models[-1]

            register(ArchitectureSpec("carry_probe", build, config=ProbeConfig))

        @hookimpl
        def forge_register_callbacks(self, register):
            register(CallbackSpec("halt_some", lambda cfg: HaltSome(cfg, halted), config=HaltConfig))

    host = load_plugins(entry_points=False, extra=(ProbePlugin(),))
    assert not host.failures, host.failures
    result = run_phase("cognate", host=host, variant="trm_tiny", max_steps=STEPS, progress=False,
                       out=tmp_path / "run", overrides=[
                           *TINY, f"model={{architecture: carry_probe, n_sup: {N_SUP}}}",
                           "callbacks={halt_some: {}}", "evaluators=[exact]", "trainer.eval_every=null"])
    assert result.status == "completed", result.message
    # The memory estimate builds the architecture on the meta device first; one model trained.
    (model,) = [m for m in models if m.calls]
    return model.calls, halted


def test_refilled_rows_get_the_initial_carry_and_the_others_keep_theirs(tmp_path):
    calls, halted = _run(tmp_path)
    assert len(calls) == STEPS and len(halted) == STEPS
    b, s = calls[0]["inputs"].shape
    initial = {"count": torch.zeros(b), "seen": torch.full((b, s), -1.0)}

    def is_initial(received, rows):
        return bool((received["count"][rows] == 0).all() and (received["seen"][rows] == -1).all())

    assert is_initial(calls[0]["received"], slice(None)), "the first step starts every row from the initial carry"
    refills = kept = changed = 0
    for t in range(1, STEPS):
        prev, now = calls[t - 1], calls[t]
        # The step limit halts a row after n_sup steps, whatever the callback adds.
        assert bool(halted[t - 1][prev["returned"]["count"] >= N_SUP].all())
        for r in range(b):
            where = f"step {t + 1}, row {r}"
            input_changed = not torch.equal(now["inputs"][r], prev["inputs"][r])
            if halted[t - 1][r]:
                refills += 1
                changed += input_changed
                assert is_initial(now["received"], r), f"{where}: refilled, but not given the initial carry"
            else:
                kept += 1
                assert not input_changed, f"{where}: not halted, yet its input changed"
                for key in initial:
                    assert torch.equal(now["received"][key][r], prev["returned"][key][r]), (
                        f"{where}: kept its sample, but not the carry the model returned ({key})")
            if input_changed:
                assert is_initial(now["received"], r), f"{where}: new input with an old carry"
    # Both cases happened, on different rows at the same steps, and refills brought new samples.
    assert refills > b and kept > b and changed >= refills - 2
    assert any(0 < int(h.sum()) < b for h in halted)
