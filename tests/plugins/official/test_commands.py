"""The official bridge from the command line, and export formats as a plugin kind."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import types
from pathlib import Path

import torch

from agent_forge.specs import ExportFormatSpec
import official_reference as ref


def forge(*args: str, check: bool = True) -> subprocess.CompletedProcess:
    proc = subprocess.run([sys.executable, "-m", "agent_forge", *args], capture_output=True, text=True,
                          env=dict(os.environ), timeout=300)
    if check:
        assert proc.returncode == 0, proc.stderr[-3000:]
    return proc


def _checkpoint(tmp_path: Path) -> Path:
    a = ref.arch(pos_encodings="learned")
    return ref.write_checkpoint(tmp_path / "ckpt", a, ref.random_state(a, vocab=7, seq_len=9, puzzles=3))


def test_import_inspect_export_from_the_command_line(tmp_path):
    step = _checkpoint(tmp_path)
    out = forge("import", "official", str(step), "--out", str(tmp_path / "imp"))
    assert "model.json" in out.stdout
    info = json.loads(forge("inspect", str(tmp_path / "imp"), "--json").stdout)
    assert info["verified"] and info["source"]["format"] == "official-trm" and info["phase"] == "import"
    shown = forge("inspect", str(tmp_path / "imp")).stdout
    assert "imported from" in shown and str(step) in shown
    forge("export", str(tmp_path / "imp" / "model.json"), str(tmp_path / "back"), "--format", "official")
    assert sorted(p.name for p in (tmp_path / "back").iterdir()) == ["all_config.yaml", "step_100"]
    again = torch.load(tmp_path / "back" / "step_100", weights_only=True)
    original = torch.load(step, weights_only=True)
    for key, value in original.items():
        if "q_head" not in key:  # our head keeps row 0 only; the export writes the official init as row 1
            assert torch.equal(again[key], value.float()), key


def test_command_line_errors_are_one_line(tmp_path):
    proc = forge("import", "official", str(tmp_path / "nope"), "--out", str(tmp_path / "o"), check=False)
    assert proc.returncode == 2 and "no such checkpoint file" in proc.stderr and "Traceback" not in proc.stderr
    step = _checkpoint(tmp_path)
    forge("import", "official", str(step), "--out", str(tmp_path / "imp"))
    proc = forge("export", str(tmp_path / "imp"), str(tmp_path / "x"), "--format", "offical", check=False)
    assert proc.returncode == 2 and "Did you mean 'official'" in proc.stderr and "Traceback" not in proc.stderr


def test_a_third_party_export_format_is_used_by_forge_export(tmp_path, monkeypatch):
    from typer.testing import CliRunner

    from agent_forge import hookimpl, plugin_host
    from agent_forge.cli import build_app

    written: list[tuple[Path, Path, bool]] = []

    def write_listing(manifest: Path, out: Path, *, overwrite: bool) -> list[Path]:
        from agent_forge.artifacts import load_artifact

        _, state = load_artifact(manifest)
        out.mkdir(parents=True, exist_ok=True)
        (out / "names.txt").write_text("\n".join(sorted(state)))
        written.append((manifest, out, overwrite))
        return [out / "names.txt"]

    mod = types.ModuleType("listing_format")
    mod.forge_register_export_formats = hookimpl(
        lambda register: register(ExportFormatSpec("listing", write_listing)))
    host = plugin_host.load_plugins(entry_points=False, extra=(mod,))
    monkeypatch.setattr(plugin_host, "_default_host", host)
    step = _checkpoint(tmp_path)
    forge("import", "official", str(step), "--out", str(tmp_path / "imp"))
    result = CliRunner().invoke(build_app(host), ["export", str(tmp_path / "imp" / "model.json"),
                                                  str(tmp_path / "list"), "--format", "listing"])
    assert result.exit_code == 0, result.output
    assert "embed.weight" in (tmp_path / "list" / "names.txt").read_text().split("\n")
    assert written and written[0][2] is False


def test_an_imported_model_is_shown_and_evaluated_on_an_official_folder(tmp_path):
    import numpy as np

    from agent_forge.plugins.datasets.official_folder import OfficialMetadata, OfficialSet, write_split

    step = _checkpoint(tmp_path)
    g = np.random.default_rng(0)
    n = 4
    meta = OfficialMetadata(pad_id=0, ignore_label_id=0, blank_identifier_id=0, vocab_size=7, seq_len=9,
                            num_puzzle_identifiers=3, total_groups=n, mean_puzzle_examples=1.0, total_puzzles=n,
                            sets=["all"])
    arrays = OfficialSet(g.integers(1, 7, (n, 9)).astype(np.uint8), g.integers(1, 7, (n, 9)).astype(np.uint8),
                         np.array([0, 1, 2, 1], np.int32), np.arange(n + 1, dtype=np.int32),
                         np.arange(n + 1, dtype=np.int32))
    write_split(tmp_path / "data", "test", meta, {"all": arrays})
    forge("import", "official", str(step), "--out", str(tmp_path / "imp"))
    shown = json.loads(forge("show", str(tmp_path / "imp"), "--data", str(tmp_path / "data"), "--index", "3",
                             "--json").stdout)
    assert len(shown["steps"]) == 4  # halt_max_steps of the reference arch
    metrics = json.loads(forge("eval", str(tmp_path / "imp"), "--data", str(tmp_path / "data"), "--json").stdout)
    assert metrics["examples"] == n and 0.0 <= metrics["official_accuracy"] <= 1.0


def test_exploration_reads_a_folder_and_saves_the_chosen_answers(tmp_path):
    import numpy as np

    from agent_forge.plugins.datasets.official_folder import OfficialMetadata, OfficialSet, write_split

    step = _checkpoint(tmp_path)
    g = np.random.default_rng(1)
    meta = OfficialMetadata(pad_id=0, ignore_label_id=0, blank_identifier_id=0, vocab_size=7, seq_len=9,
                            num_puzzle_identifiers=3, total_groups=3, mean_puzzle_examples=1.0, total_puzzles=3,
                            sets=["all"])
    arrays = OfficialSet(g.integers(1, 7, (3, 9)).astype(np.uint8), g.integers(1, 7, (3, 9)).astype(np.uint8),
                         np.array([2, 0, 1], np.int32), np.arange(4, dtype=np.int32), np.arange(4, dtype=np.int32))
    write_split(tmp_path / "data", "train", meta, {"all": arrays})
    forge("import", "official", str(step), "--out", str(tmp_path / "imp"))
    out = tmp_path / "picked.npy"
    metrics = json.loads(forge("eval", str(tmp_path / "imp"), "--data", str(tmp_path / "data"), "--split", "train",
                               "--samples", "2", "--save-predictions", str(out), "--json").stdout)
    assert metrics["examples"] == 3 and metrics["predictions"] == str(out)
    assert np.load(out).shape == (3, 9)
    again = forge("eval", str(tmp_path / "imp"), "--data", str(tmp_path / "data"), "--split", "train",
                  "--samples", "2", "--save-predictions", str(out), check=False)
    assert again.returncode == 2 and "--overwrite" in again.stderr
