import json

import pytest
import torch

from agent_forge.artifacts import load_artifact, verify_artifact, write_artifact
from agent_forge.checkpoint import load_train_state, save_train_state
from agent_forge.contracts import SCHEMA_VERSION, TaskSpec, VersionInfo
from agent_forge.errors import ArtifactError
from agent_forge.files import atomic_write_bytes


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
    with pytest.raises(ArtifactError, match="field weights differs"):
        verify_artifact(tmp_path / "m.json")
    # A schema-1 manifest has no digest to catch the edit: the path check still does.
    for key in ("field_sha256", "manifest_sha256"):
        del manifest[key]
    (tmp_path / "m.json").write_text(json.dumps({**manifest, "schema_version": 1}))
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


# -- the manifest's own digest ---------------------------------------------------------------
def _edit(path, **changes):
    manifest = json.loads(path.read_text())
    manifest.update(changes)
    path.write_text(json.dumps(manifest, indent=2))
    return manifest


def test_written_manifest_carries_its_digests(tmp_path):
    art, _ = _write(tmp_path)
    on_disk = json.loads((tmp_path / "m.json").read_text())
    assert on_disk["schema_version"] == SCHEMA_VERSION == 3 and art.manifest_sealed
    assert on_disk["manifest_sha256"] == art.manifest_sha256
    assert set(on_disk["field_sha256"]) == set(on_disk) - {"field_sha256", "manifest_sha256"}
    # Re-indenting or reordering the JSON is not an edit: the digest is over canonical JSON.
    (tmp_path / "m.json").write_text(json.dumps(dict(reversed(list(on_disk.items())))))
    assert verify_artifact(tmp_path / "m.json")[0] == art


@pytest.mark.parametrize("field, value", [
    ("metrics", {"exact_accuracy": 0.99}), ("parameters", 17), ("variant", "trm_paper"), ("step", 5000)])
def test_edited_manifest_field_is_refused_by_name(tmp_path, field, value):
    _write(tmp_path)
    _edit(tmp_path / "m.json", **{field: value})
    for load in (verify_artifact, load_artifact):
        with pytest.raises(ArtifactError, match=rf"manifest field {field} differs .*edited") as info:
            load(tmp_path / "m.json")
        assert "Refusing" in str(info.value)


def test_editing_one_metric_value_is_refused(tmp_path):
    state = {"w": torch.ones(2)}
    write_artifact(tmp_path / "m.json", dict(
        id="m", phase="cognate", architecture="trm", architecture_config={}, parameters=2,
        metrics={"exact_accuracy": 0.25, "token_accuracy": 0.5},
        task=TaskSpec(name="t", vocab_size=3, seq_len=4), versions=VersionInfo.current()), state)
    manifest = json.loads((tmp_path / "m.json").read_text())
    _edit(tmp_path / "m.json", metrics={**manifest["metrics"], "exact_accuracy": 0.95})
    with pytest.raises(ArtifactError, match="field metrics differs"):
        load_artifact(tmp_path / "m.json")


def test_added_removed_and_digest_edits_are_named(tmp_path):
    _write(tmp_path)
    path = tmp_path / "m.json"
    original = path.read_text()
    manifest = _edit(path)
    del manifest["seed"]
    path.write_text(json.dumps(manifest))
    with pytest.raises(ArtifactError, match=r"seed \(removed\)"):
        verify_artifact(path)
    path.write_text(original)
    _edit(path, field_sha256={**json.loads(original)["field_sha256"], "step": "0" * 64})
    with pytest.raises(ArtifactError, match="field step differs"):
        verify_artifact(path)
    path.write_text(original)
    _edit(path, manifest_sha256="0" * 64)
    with pytest.raises(ArtifactError, match="manifest_sha256 does not match"):
        verify_artifact(path)
    path.write_text(original)
    manifest = json.loads(original)
    del manifest["manifest_sha256"]
    path.write_text(json.dumps(manifest))
    with pytest.raises(ArtifactError, match="has no manifest_sha256"):
        verify_artifact(path)


def test_schema_1_manifest_loads_but_is_not_sealed(tmp_path):
    """Manifests written before digests: weights still verified, manifest reported unverified."""
    art, state = _write(tmp_path)
    path = tmp_path / "m.json"
    manifest = json.loads(path.read_text())
    for key in ("field_sha256", "manifest_sha256"):
        del manifest[key]
    path.write_text(json.dumps({**manifest, "schema_version": 1}))
    loaded, weights = load_artifact(path)
    assert loaded.schema_version == 1 and not loaded.manifest_sealed
    assert all(torch.equal(weights[k], state[k]) for k in state)
    data = bytearray((tmp_path / "m.safetensors").read_bytes())
    data[-1] ^= 0xFF
    (tmp_path / "m.safetensors").write_bytes(bytes(data))
    with pytest.raises(ArtifactError, match="sha256 .* does not match"):
        load_artifact(path)


@pytest.mark.parametrize("present,missing", [("config.json", "model.safetensors"), ("model.safetensors", "config.json")])
def test_a_folder_names_the_part_of_an_export_that_is_missing(tmp_path, present, missing):
    from agent_forge.artifacts import read_manifest

    (tmp_path / present).write_text("{}")
    with pytest.raises(ArtifactError, match=f"looks like an exported model .* has no {missing}"):
        read_manifest(tmp_path)


def test_a_folder_of_manifests_lists_them(tmp_path):
    from agent_forge.artifacts import read_manifest

    (tmp_path / "model-0.json").write_text("{}")
    with pytest.raises(ArtifactError, match=r"is a folder; pass the artifact's \.json manifest inside it \(here: model-0\.json\)"):
        read_manifest(tmp_path)
