"""forge export: a Hub-layout folder that load_artifact reads back, checksum-verified; edits refused."""

import json

import pytest
import torch

from agent_forge import load_artifact, run_phase
from agent_forge.errors import ArtifactError
from agent_forge.export import export_artifact


@pytest.fixture(scope="module")
def artifact(tmp_path_factory):
    from forge_testing import TINY

    out = tmp_path_factory.mktemp("exp") / "run"
    result = run_phase("cognate", variant="trm_tiny", max_steps=2, progress=False, out=out,
                       overrides=list(TINY) + ["trainer.eval_every=null"])
    return result.artifacts[0].manifest_path


def test_export_round_trips_through_load_artifact(artifact, tmp_path):
    folder = tmp_path / "hub"
    config = export_artifact(artifact, folder)
    assert sorted(p.name for p in folder.iterdir()) == ["README.md", "config.json", "model.safetensors"]
    original, weights = load_artifact(artifact)
    for path in (folder, config):
        exported, back = load_artifact(path)
        assert exported.id == original.id and exported.metrics == original.metrics
        assert exported.weights == "model.safetensors" and exported.manifest_sealed
        assert back.keys() == weights.keys() and all(torch.equal(back[k], weights[k]) for k in weights)
    card = (folder / "README.md").read_text()
    assert "library_name: agent-forge" in card and f"{original.parameters:,}" in card
    assert "forge run phase cognate --variant trm_tiny --max-steps 2" in card


def test_an_edited_export_is_refused(artifact, tmp_path):
    folder = tmp_path / "hub"
    export_artifact(artifact, folder)
    data = json.loads((folder / "config.json").read_text())
    data["metrics"]["exact_accuracy"] = 0.99
    (folder / "config.json").write_text(json.dumps(data))
    with pytest.raises(ArtifactError, match="metrics"):
        load_artifact(folder)


def test_tampered_weights_in_an_export_are_refused(artifact, tmp_path):
    folder = tmp_path / "hub"
    export_artifact(artifact, folder)
    raw = bytearray((folder / "model.safetensors").read_bytes())
    raw[-1] ^= 0xFF
    (folder / "model.safetensors").write_bytes(bytes(raw))
    with pytest.raises(ArtifactError, match="sha256"):
        load_artifact(folder)


def test_export_refuses_a_non_empty_folder(artifact, tmp_path):
    (tmp_path / "busy").mkdir()
    (tmp_path / "busy" / "x").write_text("keep me")
    with pytest.raises(ArtifactError, match="not empty"):
        export_artifact(artifact, tmp_path / "busy")
    assert (tmp_path / "busy" / "x").read_text() == "keep me"
