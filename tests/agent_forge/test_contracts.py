from pathlib import Path

import pytest
from pydantic import ValidationError

from agent_forge.contracts import ArtifactRef, ModelArtifact, PhaseResult, TaskSpec, VersionInfo


def _artifact(**kw):
    fields = dict(id="a1", phase="cognate", architecture="trm", architecture_config={"d_model": 8},
                  task=TaskSpec(name="sudoku4", vocab_size=5, seq_len=16), weights="w.safetensors",
                  sha256="0" * 64, size_bytes=10, parameters=3, versions=VersionInfo.current())
    fields.update(kw)
    return ModelArtifact(**fields)


def test_phase_result_round_trips_through_json():
    art = _artifact(metrics={"exact_accuracy": 0.5}, parents=("p0",))
    result = PhaseResult(phase="cognate", status="completed", run_dir=Path("/tmp/x"), duration_s=1.5,
                         artifacts=(ArtifactRef(manifest_path=Path("/tmp/x/a.json"), artifact=art),),
                         metrics={"exact_accuracy": 0.5})
    assert PhaseResult.model_validate_json(result.model_dump_json()) == result


def test_contracts_forbid_extra_fields_and_are_frozen():
    with pytest.raises(ValidationError, match="extra"):
        _artifact(unexpected=1)
    art = _artifact()
    with pytest.raises(ValidationError):
        art.id = "other"


def test_sha256_must_be_hex():
    with pytest.raises(ValidationError, match="sha256"):
        _artifact(sha256="not-a-digest")
