import json

import pytest
import torch

from agent_forge.checkpoint import (atomic_write_bytes, load_artifact, load_train_state, save_train_state,
                                    verify_artifact, write_artifact)
from agent_forge.contracts import TaskSpec, VersionInfo
from agent_forge.errors import ArtifactError


def _write(tmp_path):
    state = {"w": torch.randn(3, 4), "b": torch.zeros(4)}
    art = write_artifact(tmp_path / "m.json", dict(
        id="m", phase="cognate", architecture="trm", architecture_config={}, parameters=16,
        task=TaskSpec(name="t", vocab_size=3, seq_len=4), versions=VersionInfo.current()), state)
    return art, state


def test_artifact_round_trip(tmp_path):
    art, state = _write(tmp_path)
    loaded, weights = load_artifact(tmp_path / "m.json")
    assert loaded == art
    assert all(torch.equal(weights[k], state[k]) for k in state)


def test_tampered_weights_are_refused(tmp_path):
    _write(tmp_path)
    path = tmp_path / "m.safetensors"
    data = bytearray(path.read_bytes())
    data[-1] ^= 0xFF  # same size, one bit pattern changed
    path.write_bytes(bytes(data))
    with pytest.raises(ArtifactError, match="sha256 .* does not match"):
        load_artifact(tmp_path / "m.json")


def test_truncated_weights_are_refused(tmp_path):
    _write(tmp_path)
    path = tmp_path / "m.safetensors"
    path.write_bytes(path.read_bytes()[:-8])
    with pytest.raises(ArtifactError, match="size"):
        verify_artifact(tmp_path / "m.json")


def test_weights_path_may_not_leave_the_folder(tmp_path):
    _write(tmp_path)
    manifest = json.loads((tmp_path / "m.json").read_text())
    manifest["weights"] = "../elsewhere.safetensors"
    (tmp_path / "m.json").write_text(json.dumps(manifest))
    with pytest.raises(ArtifactError, match="leaves"):
        verify_artifact(tmp_path / "m.json")


def test_newer_schema_is_refused_with_advice(tmp_path):
    _write(tmp_path)
    manifest = json.loads((tmp_path / "m.json").read_text())
    manifest["schema_version"] = 99
    (tmp_path / "m.json").write_text(json.dumps(manifest))
    with pytest.raises(ArtifactError, match="Upgrade"):
        verify_artifact(tmp_path / "m.json")


def test_train_state_round_trips_nested_structures(tmp_path):
    opt = torch.optim.AdamW([torch.nn.Parameter(torch.randn(3))])
    opt.param_groups[0]["params"][0].grad = torch.ones(3)
    opt.step()
    state = {"optimizer": opt.state_dict(), "step": 7, "rng": torch.get_rng_state(),
             "tuple": (1, "a", None), "floats": [0.5, 1.5]}
    save_train_state(tmp_path / "ck", state)
    back = load_train_state(tmp_path / "ck")
    assert back["step"] == 7 and back["tuple"] == (1, "a", None) and back["floats"] == [0.5, 1.5]
    assert torch.equal(back["rng"], state["rng"])
    assert list(back["optimizer"]["state"]) == [0]  # int keys stay ints
    fresh = torch.optim.AdamW([torch.nn.Parameter(torch.randn(3))])
    fresh.load_state_dict(back["optimizer"])


def test_train_state_refuses_objects_that_need_pickle(tmp_path):
    with pytest.raises(TypeError, match="only tensors"):
        save_train_state(tmp_path / "ck", {"fn": object()})


def test_atomic_write_leaves_old_content_on_failure(tmp_path, monkeypatch):
    path = tmp_path / "f.txt"
    atomic_write_bytes(path, b"old")

    def broken_replace(*a, **k):
        raise OSError("disk full")

    monkeypatch.setattr("os.replace", broken_replace)
    with pytest.raises(OSError):
        atomic_write_bytes(path, b"new")
    assert path.read_bytes() == b"old"
    assert [p.name for p in tmp_path.iterdir()] == ["f.txt"]  # no temp file left behind
