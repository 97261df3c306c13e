"""Hub push and Hub ids, through the real huggingface_hub code against a local stand-in server."""

from __future__ import annotations

import os

import pytest
import torch

import official_reference as ref
from fake_hub import FakeHub


@pytest.fixture
def hub(tmp_path, monkeypatch):
    with FakeHub() as fake:
        import huggingface_hub.constants as constants

        monkeypatch.setenv("HF_ENDPOINT", fake.url)
        monkeypatch.setattr(constants, "ENDPOINT", fake.url)
        monkeypatch.setattr(constants, "HUGGINGFACE_CO_URL_TEMPLATE", fake.url + "/{repo_id}/resolve/{revision}/{filename}")
        monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "hf-cache"))
        monkeypatch.setattr(constants, "HF_HUB_CACHE", str(tmp_path / "hf-cache"))
        monkeypatch.setenv("HF_TOKEN", "hf_test")
        monkeypatch.setenv("HF_HUB_DISABLE_TELEMETRY", "1")
        yield fake


def _artifact(tmp_path):
    from agent_forge.plugins.official.convert import import_official

    a = ref.arch()
    step = ref.write_checkpoint(tmp_path / "ckpt", a, ref.random_state(a, vocab=7, seq_len=9, puzzles=3))
    return import_official(step, tmp_path / "imported", seq_len=9)


def test_push_then_load_by_hub_id(tmp_path, hub):
    from agent_forge import load_model
    from agent_forge.export import export_artifact
    from agent_forge.hub import push_folder

    manifest = _artifact(tmp_path)
    folder = export_artifact(manifest, tmp_path / "export").parent
    url = push_folder(folder, "someone/tiny-trm")
    assert "someone/tiny-trm" in url
    stored = hub.repos[("model", "someone/tiny-trm")]
    assert sorted(stored) == ["README.md", "config.json", "model.safetensors"]
    assert stored["model.safetensors"] == (folder / "model.safetensors").read_bytes()
    model = load_model("someone/tiny-trm")
    local = load_model(manifest)
    for name, tensor in local.state_dict().items():
        assert torch.equal(model.state_dict()[name], tensor)


def test_a_tampered_hub_artifact_is_refused(tmp_path, hub):
    from agent_forge import load_model
    from agent_forge.errors import ArtifactError
    from agent_forge.export import export_artifact

    folder = export_artifact(_artifact(tmp_path), tmp_path / "export").parent
    files = {p.name: p.read_bytes() for p in folder.iterdir()}
    weights = bytearray(files["model.safetensors"])
    weights[-1] ^= 1
    hub.add("model", "someone/bad", {**files, "model.safetensors": bytes(weights)})
    with pytest.raises(ArtifactError, match="sha256"):
        load_model("someone/bad")


def test_an_unknown_hub_id_is_one_clear_error(tmp_path, hub):
    from agent_forge import load_model
    from agent_forge.errors import ArtifactError

    with pytest.raises(ArtifactError, match="someone/missing: not found locally"):
        load_model("someone/missing")


def test_forge_export_push_to_hub_from_the_command_line(tmp_path, hub):
    from typer.testing import CliRunner

    from agent_forge.cli import build_app
    from agent_forge.plugin_host import load_plugins

    manifest = _artifact(tmp_path)
    app = build_app(load_plugins(entry_points=False))
    result = CliRunner().invoke(app, ["export", str(manifest), str(tmp_path / "ex"), "--push-to-hub", "me/m"])
    assert result.exit_code == 0, result.output
    assert "pushed" in result.stdout and ("model", "me/m") in hub.repos
    bad = CliRunner().invoke(app, ["export", str(manifest), str(tmp_path / "ex2"), "--push-to-hub", "not a repo"])
    assert bad.exit_code != 0 and not (tmp_path / "ex2").exists()
