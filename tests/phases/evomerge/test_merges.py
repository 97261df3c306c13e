"""Each merge operator on tiny tensors, against values worked out by hand."""

import math

import pytest
import torch

from agent_forge.phases.evomerge.merges import (add_noise, dare, frankenmerge, layer_group, layer_groups, linear,
                                                slerp, ties)


def test_linear_is_the_weighted_sum_and_copies_integer_tensors():
    a = {"w": torch.tensor([1.0, 2.0]), "count": torch.tensor(3)}
    b = {"w": torch.tensor([3.0, 6.0]), "count": torch.tensor(9)}
    out = linear([a, b], [0.25, 0.75])
    assert torch.equal(out["w"], torch.tensor([2.5, 5.0]))  # 0.25*1 + 0.75*3, 0.25*2 + 0.75*6
    assert torch.equal(out["count"], torch.tensor(3))  # not averaged: taken from the first
    assert torch.equal(linear([a, b])["w"], torch.tensor([2.0, 4.0]))  # default: the mean


def test_slerp_endpoints_and_the_arc_between_orthogonal_vectors():
    a, b = {"w": torch.tensor([1.0, 0.0])}, {"w": torch.tensor([0.0, 1.0])}
    torch.testing.assert_close(slerp(a, b, 0.0)["w"], a["w"])
    torch.testing.assert_close(slerp(a, b, 1.0)["w"], b["w"])
    # omega = pi/2: sin(pi/4)/sin(pi/2) of each, a point on the unit circle (linear would give 0.5, 0.5).
    half = math.sqrt(0.5)
    torch.testing.assert_close(slerp(a, b, 0.5)["w"], torch.tensor([half, half]))


def test_ties_trims_elects_the_sign_and_averages_only_the_agreeing_values():
    base = {"w": torch.full((4,), 10.0)}
    deltas = [torch.tensor([2.0, -1.0, 3.0, 0.5]),    # keeps its 2 largest: 2 and 3
              torch.tensor([1.5, 2.0, -1.0, -0.1]),   # keeps 1.5 and 2
              torch.tensor([-4.0, 1.0, -0.5, 0.2])]   # keeps -4 and 1
    states = [{"w": base["w"] + d} for d in deltas]
    # Trimmed sums: -0.5, 3, 3, 0 -> signs -, +, +, none. Entry 0: only -4 agrees; entry 1: mean of
    # 2 and 1; entry 2: only 3 (both negatives were trimmed); entry 3: nothing kept.
    out = ties(states, density=0.5, base=base)["w"]
    torch.testing.assert_close(out, torch.tensor([10 - 4.0, 10 + 1.5, 10 + 3.0, 10.0]))


def test_ties_density_one_keeps_everything_before_the_election():
    base = {"w": torch.zeros(3)}
    states = [{"w": torch.tensor([1.0, -2.0, 1.0])}, {"w": torch.tensor([3.0, 1.0, -1.0])}]
    # Sums 4, -1, 0: entry 0 averages 1 and 3, entry 1 keeps -2 alone, entry 2 has no sign.
    torch.testing.assert_close(ties(states, 1.0, base)["w"], torch.tensor([2.0, -2.0, 0.0]))


def test_dare_drops_with_the_generator_and_rescales_the_rest():
    base = {"w": torch.zeros(8)}
    w = torch.arange(1.0, 9.0)
    g = torch.Generator().manual_seed(0)
    out = dare([{"w": w}], drop=0.5, generator=g, base=base)["w"]
    # torch.rand(8) from seed 0 is 0.4963, 0.7682, 0.0885, 0.1320, 0.3074, 0.6341, 0.4901, 0.8964:
    # entries 1, 5 and 7 are >= 0.5 and survive, rescaled by 1 / (1 - 0.5) = 2.
    assert torch.equal(out, torch.tensor([0.0, 4.0, 0.0, 0.0, 0.0, 12.0, 0.0, 16.0]))
    again = dare([{"w": w}], drop=0.5, generator=torch.Generator().manual_seed(0), base=base)["w"]
    assert torch.equal(out, again)
    # Drop 0 keeps every entry unscaled: the weighted sum of the task vectors.
    assert torch.equal(dare([{"w": w}], 0.0, g, base=base)["w"], w)


def test_dare_weights_the_task_vectors_around_the_base():
    base = {"w": torch.tensor([1.0, 1.0])}
    a, b = {"w": torch.tensor([3.0, 1.0])}, {"w": torch.tensor([1.0, 5.0])}
    out = dare([a, b], 0.0, torch.Generator(), base=base, weights=[0.5, 0.25])["w"]
    assert torch.equal(out, torch.tensor([1 + 0.5 * 2.0, 1 + 0.25 * 4.0]))
    with pytest.raises(ValueError, match="drop"):
        dare([a], 1.0, torch.Generator(), base=base)


def _layered(value: float) -> dict[str, torch.Tensor]:
    keys = ["y_init", "embed.weight", "embed.position", "net.blocks.0.mixer.qkv.weight",
            "net.blocks.0.mlp.down.weight", "net.blocks.1.mixer.qkv.weight", "net.blocks.1.mlp.down.weight",
            "head.weight"]
    return {k: torch.full((2, 2), value) for k in keys}


def test_layer_groups_are_numbered_blocks_or_top_level_modules():
    assert layer_group("net.blocks.0.mlp.down.weight") == "net.blocks.0"
    assert layer_group("blocks.10.mixer.out.weight") == "blocks.10"
    assert layer_group("embed.position") == "embed"
    assert list(layer_groups(list(_layered(0)))) == ["y_init", "embed", "net.blocks.0", "net.blocks.1", "head"]


def test_frankenmerge_takes_whole_layers_from_one_parent():
    a, b = _layered(0.0), _layered(1.0)
    out = frankenmerge([a, b], picks=[0, 1, 1, 0, 1])  # y_init a, embed b, block 0 b, block 1 a, head b
    source = {k: int(v[0, 0]) for k, v in out.items()}
    assert source == {"y_init": 0, "embed.weight": 1, "embed.position": 1, "net.blocks.0.mixer.qkv.weight": 1,
                      "net.blocks.0.mlp.down.weight": 1, "net.blocks.1.mixer.qkv.weight": 0,
                      "net.blocks.1.mlp.down.weight": 0, "head.weight": 1}
    assert list(out) == list(a)
    with pytest.raises(ValueError, match="layer groups"):
        frankenmerge([a, b], picks=[0, 1])


def test_noise_is_scaled_to_each_tensor_and_reproducible():
    state = {"w": torch.tensor([0.0, 10.0, 0.0, 10.0]), "bias": torch.tensor([1.0]), "n": torch.tensor([4])}
    out = add_noise(state, 0.01, torch.Generator().manual_seed(1))
    again = add_noise(state, 0.01, torch.Generator().manual_seed(1))
    assert torch.equal(out["w"], again["w"]) and not torch.equal(out["w"], state["w"])
    assert float((out["w"] - state["w"]).abs().max()) < 0.01 * float(state["w"].std()) * 6
    assert torch.equal(out["bias"], state["bias"]) and torch.equal(out["n"], state["n"])
