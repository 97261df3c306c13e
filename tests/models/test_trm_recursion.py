"""The TRM recursion's composition, call by call.

One supervision step is T cycles of::

    repeat n times: z <- net(z, x + y)     # think: the latent sees the input and the answer
    y <- net(y, z)                          # answer: from the latent only, no x

The model is built through the architecture plugin only (its constructor is not part of the
contract), and its shared network is replaced by one that records what it was given and returns
a value that tells every call apart.
"""

from __future__ import annotations

import pytest
import torch
from torch import nn

from agent_forge.contracts import TaskSpec
from agent_forge.specs import ArchitectureSpec

TASK = TaskSpec(name="recursion", vocab_size=7, seq_len=5)


class RecordingNet(nn.Module):
    """Stands in for ``model.net``: records (h, injection, step) and returns a value that depends
    on all three, so a later call's inputs say exactly which earlier outputs they came from."""

    def __init__(self) -> None:
        super().__init__()
        self.calls: list[dict] = []

    def forward(self, h: torch.Tensor, injection: torch.Tensor, step: int) -> torch.Tensor:
        out = 0.5 * h + 0.25 * injection + (step + 1) * 0.125
        self.calls.append({"h": h.detach().clone(), "injection": injection.detach().clone(), "step": step,
                           "out": out.detach().clone()})
        return out


def _trm(host, n: int, T: int):
    reg = host.get(ArchitectureSpec, "trm")
    torch.manual_seed(0)
    cfg = reg.config(d_model=8, n_layers=1, n_heads=2, n=n, T=T, n_sup=2)
    return reg.build(cfg, TASK)


@pytest.mark.parametrize("n,T", [(2, 2), (3, 2)])
def test_each_cycle_updates_z_from_x_plus_y_n_times_then_y_from_z(host, n, T):
    model = _trm(host, n, T)
    net = RecordingNet()
    model.net = net
    embedded: list[torch.Tensor] = []
    model.embed.register_forward_hook(lambda mod, args, out: embedded.append(out.detach().clone()))

    batch = {"inputs": torch.randint(0, TASK.vocab_size, (3, TASK.seq_len), generator=torch.Generator().manual_seed(1))}
    carry = model.initial_carry(batch)
    new_carry, out = model({k: v.clone() for k, v in carry.items()}, batch)

    (x,) = embedded
    assert x.shape == carry["y"].shape == carry["z"].shape
    # The three states differ, so an injection that drops x or adds it cannot match by chance.
    assert not torch.allclose(x, carry["y"]) and not torch.allclose(x, carry["z"])

    calls = net.calls
    assert len(calls) == T * (n + 1), "T cycles of n latent updates and one answer update"
    y, z = carry["y"], carry["z"]
    k = 0
    for cycle in range(T):
        for i in range(n):
            call = calls[k]
            where = f"cycle {cycle}, latent update {i}"
            assert call["step"] == i, where
            torch.testing.assert_close(call["h"], z, msg=f"{where}: h must be the latest z")
            torch.testing.assert_close(call["injection"], x + y, msg=f"{where}: injection must be x + y")
            z = call["out"]
            k += 1
        call = calls[k]
        where = f"cycle {cycle}, answer update"
        assert call["step"] == n, where
        torch.testing.assert_close(call["h"], y, msg=f"{where}: h must be the latest y")
        torch.testing.assert_close(call["injection"], z, msg=f"{where}: injection must be the latest z (no x)")
        y = call["out"]
        k += 1
    # The step hands on the final states.
    torch.testing.assert_close(new_carry["y"], y)
    torch.testing.assert_close(new_carry["z"], z)
    assert out.logits.shape == (3, TASK.seq_len, TASK.vocab_size)
