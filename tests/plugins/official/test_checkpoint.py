"""Official TRM checkpoints in and out: outputs against an independent reference, refusals by name,
and the export round trip."""

from __future__ import annotations

import pathlib

import pytest
import torch
import yaml

import official_reference as ref
from agent_forge import load_model
from agent_forge.artifacts import load_artifact, read_manifest
from agent_forge.errors import ArtifactError, ConfigError
from agent_forge.plugins.official.convert import export_official, import_official
from agent_forge.specs import ArchitectureSpec

VOCAB, SEQ, PUZZLES, BATCH = 7, 9, 5, 4

CASES = {
    "attention_rope_compiled": (ref.arch(), True),
    "mlp_t_no_positions_uncompiled": (ref.arch(mlp_t=True, pos_encodings="none"), False),
    "learned_positions": (ref.arch(pos_encodings="learned"), True),
    "continue_head": (ref.arch(no_ACT_continue=False), True),
    "wide_puzzle_rows_no_len": (ref.arch(puzzle_emb_ndim=32, puzzle_emb_len=0), True),
    "no_puzzle_table": (ref.arch(puzzle_emb_ndim=0, puzzle_emb_len=0), True),
    "rope_theta": (ref.arch(rope_theta=500.0), True),
}


def _batch(seed: int = 1) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    return torch.randint(0, VOCAB, (BATCH, SEQ), generator=g), torch.randint(0, PUZZLES, (BATCH,), generator=g)


def _import(tmp_path: pathlib.Path, a: dict, compiled: bool = True, **kw) -> tuple[pathlib.Path, dict]:
    state = ref.random_state(a, vocab=VOCAB, seq_len=SEQ, puzzles=PUZZLES)
    step = ref.write_checkpoint(tmp_path / "ckpt", a, state, compiled=compiled)
    return import_official(step, tmp_path / "imported", seq_len=kw.pop("seq_len", SEQ), **kw), state


def _outputs(model: torch.nn.Module, inputs: torch.Tensor, ids: torch.Tensor, steps: int) -> list:
    batch = {"inputs": inputs, "puzzle_ids": ids}
    carry, out = model.initial_carry(batch), []
    with torch.no_grad():
        for _ in range(steps):
            carry, o = model(carry, batch)
            out.append(o)
    return out


@pytest.mark.parametrize("case", sorted(CASES))
def test_imported_model_computes_what_the_official_definition_computes(tmp_path, case):
    a, compiled = CASES[case]
    manifest, state = _import(tmp_path, a, compiled)
    model = load_model(manifest)
    inputs, ids = _batch()
    if not a["puzzle_emb_ndim"]:
        ids = torch.zeros_like(ids)
    expected = ref.forward(state, a, inputs, ids, steps=3)
    for k, (ours, (logits, q_halt, q_continue)) in enumerate(zip(_outputs(model, inputs, ids, 3), expected)):
        torch.testing.assert_close(ours.logits, logits, atol=2e-5, rtol=1e-5, msg=f"{case} step {k + 1} logits")
        torch.testing.assert_close(ours.q_halt_logits, q_halt, atol=2e-5, rtol=1e-5)
        if a["no_ACT_continue"]:
            assert ours.q_continue_logits is None
        else:
            torch.testing.assert_close(ours.q_continue_logits, q_continue, atol=2e-5, rtol=1e-5)
            torch.testing.assert_close(ours.halt_margin(), q_halt - q_continue, atol=4e-5, rtol=1e-5)


def test_manifest_records_the_source_and_the_task_from_the_shapes(tmp_path):
    manifest, _ = _import(tmp_path, ref.arch())
    art = read_manifest(manifest)
    assert art.phase == "import" and art.architecture == "trm" and art.step == 100
    assert art.source is not None and art.source.format == "official-trm"
    import hashlib

    assert art.source.sha256 == hashlib.sha256((tmp_path / "ckpt" / "step_100").read_bytes()).hexdigest()
    assert (art.task.vocab_size, art.task.seq_len, art.task.info["num_puzzle_ids"]) == (VOCAB, SEQ, PUZZLES)
    cfg = art.architecture_config
    assert (cfg["d_model"], cfg["n"], cfg["T"], cfg["n_sup"], cfg["puzzle_emb_len"]) == (16, 2, 2, 4, 4)


def test_sequence_length_comes_from_learned_positions_and_must_agree(tmp_path):
    a = ref.arch(pos_encodings="learned")
    manifest, _ = _import(tmp_path, a, seq_len=None)
    assert read_manifest(manifest).task.seq_len == SEQ
    with pytest.raises(ConfigError, match="disagrees"):
        import_official(tmp_path / "ckpt" / "step_100", tmp_path / "again", seq_len=SEQ + 1)


def test_rope_model_without_sequence_length_names_the_flag(tmp_path):
    a = ref.arch()
    step = ref.write_checkpoint(tmp_path / "c", a, ref.random_state(a, vocab=VOCAB, seq_len=SEQ, puzzles=PUZZLES))
    with pytest.raises(ConfigError, match="--seq-len"):
        import_official(step, tmp_path / "out")
    assert not (tmp_path / "out").exists()


class _Touch:
    """Unpickling this would create a file: proof that nothing was unpickled."""

    def __init__(self, marker: pathlib.Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return (pathlib.Path.touch, (self.marker,))


def test_a_checkpoint_that_needs_a_full_unpickle_is_refused_and_not_run(tmp_path):
    a = ref.arch()
    step = ref.write_checkpoint(tmp_path / "c", a, ref.random_state(a, vocab=VOCAB, seq_len=SEQ, puzzles=PUZZLES))
    marker = tmp_path / "unpickled"
    state = torch.load(step, weights_only=True)
    torch.save({**state, "extra": _Touch(marker)}, step)
    with pytest.raises(ArtifactError, match="weights_only"):
        import_official(step, tmp_path / "out", seq_len=SEQ)
    assert not marker.exists() and not (tmp_path / "out").exists()


def test_an_unmapped_tensor_is_refused_by_name(tmp_path):
    a = ref.arch()
    state = ref.random_state(a, vocab=VOCAB, seq_len=SEQ, puzzles=PUZZLES)
    state["L_level.layers.0.self_attn.k_norm.weight"] = torch.ones(8)
    step = ref.write_checkpoint(tmp_path / "c", a, state)
    with pytest.raises(ArtifactError, match=r"L_level\.layers\.0\.self_attn\.k_norm\.weight.*partial"):
        import_official(step, tmp_path / "out", seq_len=SEQ)


def test_a_missing_tensor_is_refused_by_name(tmp_path):
    a = ref.arch()
    state = ref.random_state(a, vocab=VOCAB, seq_len=SEQ, puzzles=PUZZLES)
    del state["L_level.layers.1.mlp.down_proj.weight"]
    step = ref.write_checkpoint(tmp_path / "c", a, state)
    with pytest.raises(ArtifactError, match=r"L_level\.layers\.1\.mlp\.down_proj\.weight"):
        import_official(step, tmp_path / "out", seq_len=SEQ)


@pytest.mark.parametrize("name, words", [
    ("recursive_reasoning.hrm@HierarchicalReasoningModel_ACTV1", "Hierarchical Reasoning Model"),
    ("recursive_reasoning.trm_singlez@TinyRecursiveReasoningModel_ACTV1", "single latent"),
    ("recursive_reasoning.trm_hier6@TinyRecursiveReasoningModel_ACTV1", "hierarchical"),
    ("recursive_reasoning.transformers_baseline@Model_ACTV2", "baseline"),
])
def test_an_architecture_we_do_not_have_is_refused_by_name(tmp_path, name, words):
    a = ref.arch()
    step = ref.write_checkpoint(tmp_path / "c", ref.arch(name=name),
                                ref.random_state(a, vocab=VOCAB, seq_len=SEQ, puzzles=PUZZLES))
    with pytest.raises(ConfigError, match=words):
        import_official(step, tmp_path / "out", seq_len=SEQ)


def test_an_unknown_arch_key_is_refused_by_name(tmp_path):
    a = ref.arch()
    step = ref.write_checkpoint(tmp_path / "c", {**a, "hiden_size": 16},
                                ref.random_state(a, vocab=VOCAB, seq_len=SEQ, puzzles=PUZZLES))
    with pytest.raises(ConfigError, match="hiden_size"):
        import_official(step, tmp_path / "out", seq_len=SEQ)


def test_export_then_import_is_bit_identical(tmp_path):
    manifest, _ = _import(tmp_path, ref.arch(pos_encodings="learned", no_ACT_continue=False))
    files = export_official(manifest, tmp_path / "official")
    assert sorted(p.name for p in files) == ["all_config.yaml", "step_100"]
    config = yaml.safe_load((tmp_path / "official" / "all_config.yaml").read_text())
    assert config["arch"]["name"] == ref.ARCH_NAME and config["arch"]["pos_encodings"] == "learned"
    keys = torch.load(tmp_path / "official" / "step_100", weights_only=True).keys()
    assert all(k.startswith("_orig_mod.model.inner.") for k in keys)
    again = import_official(files[0], tmp_path / "again")  # seq_len from the export's own record
    _, a = load_artifact(manifest)
    _, b = load_artifact(again)
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) and a[k].dtype == b[k].dtype for k in a)
    inputs, ids = _batch()
    for x, y in zip(_outputs(load_model(manifest), inputs, ids, 2), _outputs(load_model(again), inputs, ids, 2)):
        assert torch.equal(x.logits, y.logits) and torch.equal(x.q_halt_logits, y.q_halt_logits)


def test_export_writes_the_two_row_head_the_official_code_loads(tmp_path):
    manifest, state = _import(tmp_path, ref.arch())  # no continue head: our head has one row
    export_official(manifest, tmp_path / "official")
    saved = torch.load(tmp_path / "official" / "step_100", weights_only=True)
    weight, bias = saved["_orig_mod.model.inner.q_head.weight"], saved["_orig_mod.model.inner.q_head.bias"]
    assert weight.shape == (2, 16) and torch.equal(weight[0], state["q_head.weight"][0])
    assert torch.equal(weight[1], torch.zeros(16)) and bias[1] == -5.0  # the official init of the unused row
    expected = {"_orig_mod.model.inner." + k for k in state}
    assert set(saved) == expected


def test_export_refuses_what_the_official_model_cannot_express(tmp_path, host):
    from agent_forge.artifacts import write_artifact
    from agent_forge.contracts import TaskSpec, VersionInfo

    reg = host.get(ArchitectureSpec, "trm")
    cfg = reg.config.model_validate({"d_model": 16, "n_heads": 2, "n_layers": 1, "n_sup": 2})  # Q-head reads the mean
    task = TaskSpec(name="sudoku4", vocab_size=5, seq_len=16)
    model = reg.build(cfg, task)
    manifest = tmp_path / "m.json"
    write_artifact(manifest, {"id": "x", "phase": "cognate", "architecture": "trm",
                              "architecture_config": cfg.model_dump(mode="json"), "task": task,
                              "parameters": 1, "versions": VersionInfo.current()}, model.state_dict())
    with pytest.raises(ConfigError, match="q_head_input"):
        export_official(manifest, tmp_path / "official")
    assert not (tmp_path / "official").exists()


def test_import_refuses_a_non_empty_folder_unless_overwrite(tmp_path):
    manifest, _ = _import(tmp_path, ref.arch())
    with pytest.raises(ConfigError, match="not empty"):
        import_official(tmp_path / "ckpt" / "step_100", tmp_path / "imported", seq_len=SEQ)
    assert import_official(tmp_path / "ckpt" / "step_100", tmp_path / "imported", seq_len=SEQ,
                           overwrite=True) == manifest


def test_export_refuses_a_model_without_a_puzzle_table(tmp_path):
    # The official load_checkpoint reads the puzzle table's shape and fails when there is none.
    manifest, _ = _import(tmp_path, ref.arch(puzzle_emb_ndim=0, puzzle_emb_len=0))
    with pytest.raises(ConfigError, match="puzzle_emb_len"):
        export_official(manifest, tmp_path / "official")
