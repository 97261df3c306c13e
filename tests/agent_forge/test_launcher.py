"""``forge run phase ... --nproc K``: the launcher reports what the phase says it saved.

The launcher used to read Cognate's ``latest.json["step"]`` itself, so a multi-process EvoMerge run
(whose pointer says ``"generation"``) that was interrupted after saving generation 2 reported "no
checkpoint was saved". Here the command runs for real up to the launch (its config, inputs and run
folder are checked in this process); torch.distributed.run is replaced by a stand-in that does
what the ranks do before they stop (save a checkpoint in the phase's own layout, through the
phase's own code) and then ends as torchrun ends: :class:`SignalException` when the launching
process got the signal, :class:`ChildFailedError` when the ranks exited 130 or one died.
"""

from __future__ import annotations

import re
import tempfile
import signal
from pathlib import Path

import pytest
from forge_testing import forge_main
import torch
from torch.distributed.elastic.multiprocessing.api import SignalException
from torch.distributed.elastic.multiprocessing.errors import ChildFailedError, ProcessFailure

from agent_forge.artifacts import write_artifact
from agent_forge.contracts import TaskSpec, VersionInfo


@pytest.fixture(autouse=True)
def _no_leaked_launcher_env(monkeypatch):
    # launch_ranks sets these for the ranks it starts; keep them out of the other tests.
    monkeypatch.setenv("TORCH_ELASTIC_SHUTDOWN_TIMEOUT", "30")
    monkeypatch.delenv("FORGE_DIST_BACKEND", raising=False)




def _manifest(folder: Path) -> Path:
    """An artifact EvoMerge accepts as an input before it runs (its manifest is read, not its weights)."""
    path = folder / "model-0.json"
    write_artifact(path, dict(
        id="in0", phase="cognate", variant="trm_tiny", architecture="trm", architecture_config={}, parameters=3,
        metrics={}, step=3, task=TaskSpec(name="sudoku4", vocab_size=6, seq_len=16), versions=VersionInfo.current()),
        {"w": torch.ones(3)})
    return path


def _failure(exitcode: int, tmp_path: Path, rank: int) -> ProcessFailure:
    return ProcessFailure(local_rank=rank, pid=1000 + rank, exitcode=exitcode,
                          error_file=str(tmp_path / f"no-error-file-{rank}"))


def _ranks_that(save, end):
    """A stand-in for torch.distributed.run's main: the ranks save (``save(run_dir)``), then it
    ends as ``end`` says."""

    def torchrun(args: list[str]) -> None:
        out = Path(args[args.index("--out") + 1])
        save(out)
        raise end()

    return torchrun


def _evomerge_saves_generation(n: int):
    def save(run_dir: Path) -> None:
        from agent_forge.phases.evomerge.checkpoints import GenerationCheckpoints

        store = GenerationCheckpoints(run_dir / "checkpoints")
        for generation in range(n + 1):
            store.save(generation, {"inputs": ["in0"], "generation": generation})

    return save


@pytest.mark.parametrize("how", ["signal", "ranks_exit_130"])
def test_an_interrupted_multi_process_evomerge_run_names_its_generation(tmp_path, capsys, monkeypatch, how):
    import torch.distributed.run

    end = ((lambda: SignalException("SIGINT", signal.SIGINT)) if how == "signal" else
           (lambda: ChildFailedError("agent_forge", {r: _failure(130, tmp_path, r) for r in (0, 1)})))
    monkeypatch.setattr(torch.distributed.run, "main", _ranks_that(_evomerge_saves_generation(2), end))
    out = tmp_path / "merge"
    code, _, err = forge_main(["run", "phase", "evomerge", "--nproc", "2", "--no-progress", "--out", str(out),
                           "--set", f"inputs=[{_manifest(tmp_path)}]"], capsys)
    assert code == 130, err
    assert "no checkpoint" not in err
    assert re.search(r"stopped: interrupted by SIGINT; every rank stopped, the newest checkpoint is generation 2"
                     r" \(.*gen-0002\)", err), err
    assert "resume with: forge run phase evomerge" in err and "--resume" in err


def test_a_failed_multi_process_evomerge_run_says_its_generation_is_intact(tmp_path, capsys, monkeypatch):
    import torch.distributed.run

    def end() -> ChildFailedError:
        return ChildFailedError("agent_forge", {0: _failure(1, tmp_path, 0)})

    monkeypatch.setattr(torch.distributed.run, "main", _ranks_that(_evomerge_saves_generation(1), end))
    code, _, err = forge_main(["run", "phase", "evomerge", "--nproc", "2", "--no-progress", "--out",
                           str(tmp_path / "merge"), "--set", f"inputs=[{_manifest(tmp_path)}]"], capsys)
    assert code == 2, err
    assert "rank 0 (pid 1000) died first, exit code 1" in err
    assert re.search(r"The newest checkpoint, generation 1 \(.*gen-0001\), is intact: rerun with --resume", err), err


def test_nothing_saved_is_said_as_nothing_saved(tmp_path, capsys, monkeypatch):
    import torch.distributed.run

    monkeypatch.setattr(torch.distributed.run, "main",
                        _ranks_that(lambda run_dir: None, lambda: SignalException("SIGTERM", signal.SIGTERM)))
    code, _, err = forge_main(["run", "phase", "evomerge", "--nproc", "2", "--no-progress", "--out",
                           str(tmp_path / "merge"), "--set", f"inputs=[{_manifest(tmp_path)}]"], capsys)
    assert code == 128 + signal.SIGTERM, err
    assert "interrupted by SIGTERM; every rank stopped, no checkpoint was saved" in err


def test_each_phase_says_what_it_saved_in_its_own_unit(tmp_path, host):
    """Cognate counts optimizer steps (the model in work, with --models N), EvoMerge generations."""
    from agent_forge.phases.cognate.checkpointing import checkpoint_folder
    from agent_forge.runner import PhaseRunner

    runner = PhaseRunner(host)
    cognate = runner.phase_class("cognate")(host)
    run = tmp_path / "cognate"
    assert cognate.newest_checkpoint(run) is None
    for model, steps in ((0, (4, 8)), (1, (2,))):
        for step in steps:
            checkpoint_folder(run / f"model-{model}" / "checkpoints").write(step, {"step": step}, keep=2)
    saved = cognate.newest_checkpoint(run)
    assert (saved.unit, saved.position, saved.folder) == ("step", 2, run / "model-1" / "checkpoints" / "step-00000002")
    assert str(saved) == f"step 2 ({saved.folder})"

    evomerge = runner.phase_class("evomerge")(host)
    _evomerge_saves_generation(3)(tmp_path / "merge")
    saved = evomerge.newest_checkpoint(tmp_path / "merge")
    assert (saved.unit, saved.position, saved.folder.name) == ("generation", 3, "gen-0003")


@pytest.mark.parametrize("end", ["completes", "signal"])
def test_the_launch_leaves_no_log_folder_behind(tmp_path, capsys, monkeypatch, end):
    # torchrun makes a ``torchelastic_*`` folder in the temp folder per launch unless given
    # --log-dir, and never removes it; 536 of them had piled up in /tmp on a developer machine.
    import torch.distributed.run

    temp = tmp_path / "temp"
    temp.mkdir()
    monkeypatch.setenv("TMPDIR", str(temp))
    monkeypatch.setattr(tempfile, "tempdir", None)  # re-read TMPDIR
    seen: list[Path] = []

    def torchrun(args: list[str]) -> None:
        log_dir = Path(next(a for a in args if a.startswith("--log-dir=")).split("=", 1)[1])
        assert log_dir.is_dir() and log_dir.parent == temp
        (log_dir / "attempt_0").mkdir()  # what torchrun writes there
        seen.append(log_dir)
        if end == "signal":
            raise SignalException("SIGTERM", signal.SIGTERM)

    monkeypatch.setattr(torch.distributed.run, "main", torchrun)
    code, _, err = forge_main(["run", "phase", "evomerge", "--nproc", "2", "--no-progress", "--out",
                               str(tmp_path / "merge"), "--set", f"inputs=[{_manifest(tmp_path)}]"], capsys)
    assert seen, err
    assert list(temp.iterdir()) == [], f"left behind: {list(temp.iterdir())}"
    if end == "signal":
        assert code == 128 + signal.SIGTERM, err
