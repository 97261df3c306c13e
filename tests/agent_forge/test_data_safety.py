"""Nothing lost, no dead ends (issue 27): what each command leaves on disk, case by case.

The refusals of the issue are rows of test_cli_errors.py (exit 2, one line, nothing written).
Here are the cases that run, or stop part way, and what they must leave: one table of
(set-up, command, exit code, what stderr must say, what must be on disk after). Every row runs
the CLI in this process (``agent_forge.cli.main``); a row that breaks a run at a known point
(a failure after its folder was made, a second Ctrl-C, an allocation that fails) does it with
``monkeypatch`` at a step the run is at, never with a delay. Off a terminal the CLI logs JSON
lines on stderr; the lines a person reads (``error:``, ``stopped:``, ``resume with:``,
``resuming``) are the others, and each row says how many of them there are.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import shutil
import signal
import stat
import subprocess
import sys
from pathlib import Path
from typing import Any, Callable

import pytest
import torch

from forge_testing import TINY, forge_main

SETS = [a for o in TINY for a in ("--set", o)]
RUN = ["run", "phase", "cognate", "--variant", "trm_tiny", "--max-steps", "2", *SETS]
PIPE = ["run", "pipeline", "cognate,evomerge", "--variant", "trm_tiny", "--max-steps", "1", *SETS,
        "--set", "evomerge.selection_samples=16", "--set", "evomerge.heldout_samples=16",
        "--set", "evomerge.generations=1", "--set", "evomerge.population=3", "--set", "evomerge.elite=1"]
STALE_CONFIG = '{"phase": "cognate", "variant": "trm_tiny", "config": {}}\n'


@pytest.fixture(scope="module")
def shared_run(tmp_path_factory):
    """One tiny finished run (2 steps, checkpoint at step 2) for the rows that need one."""
    from agent_forge import run_phase

    out = tmp_path_factory.mktemp("shared") / "run"
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("FORGE_CACHE_DIR", str(tmp_path_factory.getbasetemp() / "cache"))
        run_phase("cognate", variant="trm_tiny", overrides=TINY, max_steps=2, progress=False, out=out)
    return out


def listing(root: Path) -> dict[str, str]:
    """Every file and folder under ``root``: a file with the sha256 of its bytes."""
    return {str(p.relative_to(root)): "dir" if p.is_dir() else hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(root.rglob("*"))}


def said(err: str) -> list[str]:
    """The lines of stderr a person reads: not the JSON log lines."""
    return [line for line in err.splitlines() if line.strip() and not line.startswith("{")]


# -- set-ups (tmp, shared run, monkeypatch) ------------------------------------------------------
def _keep_csv(tmp: Path, run: Path, mp: pytest.MonkeyPatch) -> None:
    (tmp / "keep.csv").write_text("question,answer\n" + f"{'.' * 16},1234341221434321\n" * 50)


def _stale(tmp: Path, run: Path, mp: pytest.MonkeyPatch) -> None:
    """What a run killed in its first step left (or any version before this one, on a failure)."""
    (tmp / "r").mkdir()
    (tmp / "r" / "config.json").write_text(STALE_CONFIG)


def _build_fails(tmp: Path, run: Path, mp: pytest.MonkeyPatch) -> None:
    """The run folder is made, then building the model fails (as a missing package once did)."""
    from agent_forge.errors import ConfigError
    from agent_forge.phases.cognate import phase

    def fail(*args: Any, **kwargs: Any) -> None:
        raise ConfigError("model: cannot be built here")

    mp.setattr(phase, "build_model", fail)


def _build_fails_in_a_users_folder(tmp: Path, run: Path, mp: pytest.MonkeyPatch) -> None:
    (tmp / "r").mkdir()
    (tmp / "r" / "notes.txt").write_text("mine\n")
    _build_fails(tmp, run, mp)


def _allocation_fails(tmp: Path, run: Path, mp: pytest.MonkeyPatch) -> None:
    """Past the estimate, the allocator still refuses (another process took the memory)."""
    from agent_forge.phases.cognate import phase

    def fail(*args: Any, **kwargs: Any) -> None:
        raise torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 20.00 GiB")

    mp.setattr(phase, "build_model", fail)


def _ctrl_c_twice_at(step: int) -> Callable[[Path, Path, pytest.MonkeyPatch], None]:
    """Ctrl-C, then Ctrl-C again, both while step ``step + 1`` is in flight."""

    def setup(tmp: Path, run: Path, mp: pytest.MonkeyPatch) -> None:
        from agent_forge.phases.cognate import interrupts
        from agent_forge.phases.cognate.trainer import DeepSupervisionTrainer

        mp.setattr(interrupts, "REPEAT_WINDOW_S", 0.0)  # the second is a second interrupt, not an echo
        real = DeepSupervisionTrainer._train_step

        def step_with_two_interrupts(self: Any, state: Any) -> bool:
            if state.step == step:
                signal.raise_signal(signal.SIGINT)  # the first: finish the step, save, stop
                signal.raise_signal(signal.SIGINT)  # the second: at once (KeyboardInterrupt)
            return real(self, state)

        mp.setattr(DeepSupervisionTrainer, "_train_step", step_with_two_interrupts)

    return setup


def _unfinished_in_runs(tmp: Path, run: Path, mp: pytest.MonkeyPatch) -> None:
    dest = tmp / "runs" / "20260101-000000-cognate-trm_tiny-abcd"
    shutil.copytree(run, dest)
    (dest / "result.json").unlink()  # killed after its checkpoint of step 2


def _duplicate_rows(tmp: Path, run: Path, mp: pytest.MonkeyPatch) -> None:
    row = "12..34..21..43..,1234341221434321\n"
    (tmp / "dup.csv").write_text("question,answer\n" + row + row + "1...3...2...4...,1234341221434321\n")


# -- checks of the disk after ------------------------------------------------------------------
def _lines_of(name: str, n: int) -> Callable[[Path], None]:
    def check(tmp: Path) -> None:
        assert len((tmp / name).read_text().splitlines()) == n

    return check


def _finished_run(name: str) -> Callable[[Path], None]:
    def check(tmp: Path) -> None:
        assert json.loads((tmp / name / "result.json").read_text())["status"] == "completed"
        config = json.loads((tmp / name / "config.json").read_text())
        assert config["config"]["trainer"]["max_steps"] == 2  # this run's, not the stale one's

    return check


def _absent(name: str) -> Callable[[Path], None]:
    def check(tmp: Path) -> None:
        assert not (tmp / name).exists()

    return check


def _only_users_file(tmp: Path) -> None:
    assert sorted(p.name for p in (tmp / "r").iterdir()) == ["notes.txt"]
    assert (tmp / "r" / "notes.txt").read_text() == "mine\n"


def _resumable_at_step_2(tmp: Path) -> None:
    assert json.loads((tmp / "r" / "checkpoints" / "latest.json").read_text())["step"] == 2
    assert not (tmp / "r" / "result.json").exists()


def _resumed_in_runs(tmp: Path) -> None:
    run = tmp / "runs" / "20260101-000000-cognate-trm_tiny-abcd"
    assert json.loads((run / "result.json").read_text())["metrics"]["steps"] == 2
    assert sorted(p.name for p in (tmp / "runs").iterdir()) == [run.name]  # no new run was started


def _pipeline_done(tmp: Path) -> None:
    for phase in ("cognate", "evomerge"):
        assert json.loads((tmp / "p" / phase / "result.json").read_text())["status"] == "completed"
    config = json.loads((tmp / "p" / "evomerge" / "config.json").read_text())["config"]
    assert config["selection_samples"] == 16 and config["generations"] == 1  # --set evomerge.* reached it


def _cognate_kept_evomerge_gone(tmp: Path) -> None:
    assert json.loads((tmp / "p" / "cognate" / "result.json").read_text())["status"] == "completed"
    assert (tmp / "p" / "cognate" / "artifacts" / "model-0.json").is_file()
    assert not (tmp / "p" / "evomerge").exists()


def _ablation_as_run(tmp: Path) -> None:
    data = json.loads((tmp / "abl" / "ablation.json").read_text())
    assert data["shared_trainer"]["batch_size"] == 16 and data["jobs"] == 1
    assert "runs at a time" not in (tmp / "abl" / "ablation.md").read_text()


# (id, set-up, argv, exit code, parts that must appear in the lines a person reads (each line
# joined), how many such lines, what must be on disk after, what stdout must hold).
CASES = [
    ("data-generate-overwrite", _keep_csv,
     ["data", "generate", "sudoku4", "--count", "3", "--out", "{tmp}/keep.csv", "--overwrite"],
     0, [], 0, _lines_of("keep.csv", 4), ['"count": 3']),
    ("stale-folder-is-a-fresh-start", _stale, [*RUN, "--no-progress", "--out", "{tmp}/r"],
     0, [], 0, _finished_run("r"), ["completed"]),
    ("stale-folder-with-resume-says-start-without", _stale, [*RUN, "--no-progress", "--resume", "--out", "{tmp}/r"],
     2, ["error: --resume", "no checkpoint", "without --resume"], 1, None, []),
    ("failure-after-the-folder-removes-it", _build_fails, [*RUN, "--no-progress", "--out", "{tmp}/r"],
     2, ["error: model: cannot be built here", "nothing was saved: the run folder {tmp}/r was removed"], 1,
     _absent("r"), []),
    ("failure-in-a-users-folder-keeps-their-files", _build_fails_in_a_users_folder,
     [*RUN, "--no-progress", "--out", "{tmp}/r"], 2, ["nothing was saved: what the run added to {tmp}/r was"
                                                      " removed"], 1, _only_users_file,
     []),
    ("allocation-fails-in-one-line", _allocation_fails, [*RUN, "--no-progress", "--out", "{tmp}/r"],
     2, ["error: out of memory while building the model", "model.d_model", "trainer.batch_size", "was removed"], 1,
     _absent("r"), []),
    ("second-ctrl-c-in-the-first-step", _ctrl_c_twice_at(0), [*RUN, "--no-progress", "--out", "{tmp}/r"],
     130, ["stopped: interrupted by SIGINT at once", "nothing was saved", "the run folder {tmp}/r was removed"], 1,
     _absent("r"), []),
    ("second-ctrl-c-after-a-checkpoint", _ctrl_c_twice_at(2),
     [*RUN, "--max-steps", "4", "--checkpoint-every", "1", "--no-progress", "--out", "{tmp}/r"],
     130, ["stopped: interrupted by SIGINT at once", "not saved", "step-00000002", "resume with: forge",
           "--resume"], 2,
     _resumable_at_step_2, []),
    ("resume-without-out-names-the-run", _unfinished_in_runs, [*RUN, "--no-progress", "--resume"],
     0, ["resuming runs/20260101-000000-cognate-trm_tiny-abcd", "newest unfinished cognate/trm_tiny run"], 1,
     _resumed_in_runs, ["completed"]),
    ("pipeline-set-reaches-every-phase", None, [*PIPE, "--no-progress", "--out", "{tmp}/p"],
     0, [], 0, _pipeline_done, ["cognate", "evomerge"]),
    ("pipeline-later-failure-shows-what-completed", None,
     [*PIPE, "--set", "evomerge.metric=nope", "--no-progress", "--out", "{tmp}/p"],
     2, ["error: pipeline phase 'evomerge'", "evomerge.metric='nope'", "completed before it: cognate"], 1,
     _cognate_kept_evomerge_gone, ["cognate", "completed", "p/cognate/artifacts/model-0.json"]),
    ("stats-says-unique-solution-and-duplicates", _duplicate_rows, ["data", "stats", "{tmp}/dup.csv"],
     0, [], 0, None, ['"unique_solution"', '"duplicate_puzzles": 1', "!\"unique\":"]),
    ("version", None, ["--version"], 0, [], 0, _absent("runs"), [f"agent-forge {__import__('agent_forge').__version__}"]),
    ("ablate-reports-the-batch-and-jobs-used", None,
     ["ablate", "--variants", "trm_tiny", "--task", "sudoku4", "--minutes", "1", "--jobs", "8", *SETS,
      "--set", "trainer.max_steps=2", "--set", "trainer.eval_every=null", "--out", "{tmp}/abl"],
     0, [], 0, _ablation_as_run, ['"jobs": 1', '"batch_size": 16', "!\"batch_size\": 128"]),
]


@pytest.mark.parametrize("case_id, setup, argv, code, parts, n_lines, disk, stdout",
                         [pytest.param(*c, id=c[0]) for c in CASES])
def test_what_a_command_leaves_on_disk(case_id, setup, argv, code, parts, n_lines, disk, stdout, tmp_path,
                                       capsys, monkeypatch, request):
    monkeypatch.chdir(tmp_path)
    run = request.getfixturevalue("shared_run") if setup is _unfinished_in_runs else tmp_path
    if setup is not None:
        setup(tmp_path, run, monkeypatch)
    before = listing(tmp_path)
    fill = str(tmp_path)
    got, out, err = forge_main([a.replace("{tmp}", fill) for a in argv], capsys)
    assert got == code, err[-3000:]
    assert "Traceback" not in err and "Traceback" not in out
    lines = said(err)
    assert len(lines) == n_lines, lines
    joined = " | ".join(lines)
    for part in parts:
        assert part.replace("{tmp}", fill) in joined, f"{part!r} not in: {joined}"
    for part in stdout:
        if part.startswith("!"):
            assert part[1:] not in out, out
        else:
            assert part.replace("{tmp}", fill) in out, f"{part!r} not in stdout: {out[-2000:]}"
    if disk is not None:
        disk(tmp_path)
    elif code != 0:
        assert listing(tmp_path) == before, "a refused command wrote something"


def test_the_table_covers_every_case_of_the_issue_that_runs():
    ids = {c[0] for c in CASES}
    for needed in ("data-generate-overwrite", "stale-folder-is-a-fresh-start", "failure-after-the-folder-removes-it",
                   "second-ctrl-c-in-the-first-step", "allocation-fails-in-one-line",
                   "resume-without-out-names-the-run", "pipeline-set-reaches-every-phase",
                   "pipeline-later-failure-shows-what-completed", "stats-says-unique-solution-and-duplicates"):
        assert needed in ids, needed


# -- the rest of the issue: what is not a command line's exit and files --------------------------------
@pytest.mark.parametrize("call, names", [
    (lambda af: af.load_artifact(None), "load_artifact(manifest_path=None)"),
    (lambda af: af.load_model(3), "load_model(artifact=3)"),
    (lambda af: af.Pipeline("cognate"), "Pipeline(phases='cognate')"),
    (lambda af: af.Pipeline(["cognate", 7]), "Pipeline(phases=['cognate', 7])"),
    (lambda af: af.run_phase(None), "run_phase(name=None)"),
], ids=["load_artifact-None", "load_model-int", "Pipeline-a-string", "Pipeline-not-names", "run_phase-None"])
def test_a_python_api_argument_of_the_wrong_type_is_a_type_error_naming_it(call, names, tmp_path, monkeypatch):
    import agent_forge

    monkeypatch.chdir(tmp_path)
    with pytest.raises(TypeError) as raised:
        call(agent_forge)
    assert names in str(raised.value) and "\n" not in str(raised.value)
    assert list(tmp_path.iterdir()) == []


def test_forge_version_prints_the_package_version(capsys):
    import importlib.metadata

    import agent_forge

    code, out, err = forge_main(["--version"], capsys)
    assert code == 0 and err == ""
    assert out == f"agent-forge {agent_forge.__version__}\n"
    assert agent_forge.__version__ == importlib.metadata.version("agent-forge")


def test_the_python_api_logs_nothing_unless_asked_and_never_on_stdout(tmp_path):
    """The README's example, in a fresh process: silent; with configure_logging(), on stderr."""
    script = ("import sys; from agent_forge import run_phase\n"
              "if sys.argv[1] == 'asked':\n"
              "    from agent_forge.logging import configure_logging; configure_logging(json_logs=True)\n"
              f"run_phase('cognate', variant='trm_tiny', overrides={list(TINY)!r}, max_steps=1, progress=False,"
              " out=sys.argv[2])\n")
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(p for p in sys.path if p)}
    quiet = subprocess.run([sys.executable, "-c", script, "quiet", str(tmp_path / "a")], capture_output=True,
                           text=True, env=env, timeout=300)
    assert quiet.returncode == 0, quiet.stderr[-2000:]
    assert quiet.stdout == "" and quiet.stderr == ""
    asked = subprocess.run([sys.executable, "-c", script, "asked", str(tmp_path / "b")], capture_output=True,
                           text=True, env=env, timeout=300)
    assert asked.returncode == 0, asked.stderr[-2000:]
    assert asked.stdout == ""
    events = [json.loads(line)["event"] for line in asked.stderr.splitlines()]
    assert "phase.start" in events and "phase.end" in events


def test_off_a_terminal_training_and_the_final_evaluation_say_how_far_they_got(tmp_path, capsys, monkeypatch):
    """No bar off a terminal: a line as each starts (the interval after it is PROGRESS_LINE_EVERY_S,
    the one the --progress help and the README name)."""
    from agent_forge.progress import PROGRESS_LINE_EVERY_S
    from agent_forge.runner import RunOptions

    progress_help = RunOptions.model_fields["progress"].json_schema_extra["help"]  # --progress's help

    monkeypatch.chdir(tmp_path)
    code, out, err = forge_main([*RUN, "--out", str(tmp_path / "r")], capsys)
    assert code == 0, err[-2000:]
    events = [json.loads(line) for line in err.splitlines() if line.startswith("{")]
    assert any(e["event"] == "train.progress" for e in events)
    evals = [e for e in events if e["event"] == "eval.progress"]
    assert evals and evals[0]["examples"] == 0 and evals[0]["total"] == 64  # raw and EMA, 32 rows each
    every = f"every {PROGRESS_LINE_EVERY_S:g} s"
    assert every in progress_help
    readme = (Path(__file__).resolve().parents[2] / "README.md").read_text()
    assert f"every {PROGRESS_LINE_EVERY_S:g} s" in readme and "every few seconds" not in progress_help


def test_plain_progress_lines_come_at_the_start_then_every_interval():
    from agent_forge.progress import PlainLines

    now = [0.0]
    logged: list[dict] = []

    class Log:
        def info(self, event: str, **fields: Any) -> None:
            logged.append(fields)

    lines = PlainLines(True, "x.progress", log=Log(), every_s=30.0, clock=lambda: now[0])
    lines.active = True  # as off a terminal (pytest's capture may or may not look like one)
    for t, n in ((0.0, 1), (29.9, 2), (30.0, 3), (45.0, 4), (60.1, 5)):
        now[0] = t
        lines.tick(n=n)
    assert [f["n"] for f in logged] == [1, 3, 5]
    later = PlainLines(True, "x.progress", log=Log(), every_s=30.0, at_start=False, clock=lambda: now[0])
    later.active = True
    logged.clear()
    for t, n in ((100.0, 1), (129.0, 2), (130.0, 3)):
        now[0] = t
        later.tick(n=n)
    assert [f["n"] for f in logged] == [3]


@pytest.mark.parametrize("umask, mode", [(0o022, 0o644), (0o077, 0o600)], ids=["umask-022", "umask-077"])
def test_exports_and_run_files_follow_the_umask(umask, mode, shared_run, tmp_path, capsys):
    previous = os.umask(umask)
    try:
        code, _, err = forge_main(["export", str(shared_run / "artifacts" / "model-0.json"), str(tmp_path / "ex")],
                                  capsys)
    finally:
        os.umask(previous)
    assert code == 0, err
    for name in ("model.safetensors", "config.json", "README.md"):
        assert stat.S_IMODE((tmp_path / "ex" / name).stat().st_mode) == mode, name
    # A run's own files are written the same way (atomic_write_bytes), under the same umask.
    from agent_forge.files import atomic_write_json

    previous = os.umask(umask)
    try:
        atomic_write_json(tmp_path / "run" / "result.json", {"status": "completed"})
    finally:
        os.umask(previous)
    assert stat.S_IMODE((tmp_path / "run" / "result.json").stat().st_mode) == mode


def test_a_failure_on_non_finite_steps_never_claims_a_checkpoint_that_is_not_there(tmp_path, host, monkeypatch):
    from agent_forge import run_phase
    from agent_forge.phases.cognate import trainer

    real = trainer.compute_task_loss

    def nan_from_step(start: int) -> Callable[..., Any]:
        def loss(state: Any, cfg: Any) -> Any:
            task = real(state, cfg)
            return dataclasses.replace(task, lm=task.lm * float("nan")) if state.step >= start else task
        return loss

    common = dict(host=host, variant="trm_tiny", max_steps=6, progress=False,
                  overrides=[*TINY, "trainer.nan_patience=2"])
    monkeypatch.setattr(trainer, "compute_task_loss", nan_from_step(0))
    none = run_phase("cognate", out=tmp_path / "none", **common)
    assert none.status == "failed" and "no checkpoint was saved" in none.message
    assert "intact" not in none.message
    monkeypatch.setattr(trainer, "compute_task_loss", nan_from_step(3))
    some = run_phase("cognate", out=tmp_path / "some", checkpoint_every=1, **common)
    assert some.status == "failed" and "step-00000003" in some.message and "is intact" in some.message
    assert (tmp_path / "some" / "checkpoints" / "step-00000003").is_dir()


def test_ablate_reports_the_batch_and_the_jobs_its_runs_used(tmp_path, host):
    from agent_forge.phases.cognate.ablation.runner import run_ablation

    out = tmp_path / "abl"
    data = run_ablation(host, ["trm_tiny"], task="sudoku4", seeds=1, minutes=1.0, progress=False, jobs=8,
                        overrides=[*TINY, "trainer.max_steps=2", "trainer.eval_every=null"], out=out)
    assert data["shared_trainer"]["batch_size"] == 16  # the --set value every run used, not the preset's 128
    assert json.loads((out / "trm_tiny" / "seed-0" / "config.json").read_text())["config"]["trainer"][
        "batch_size"] == 16
    assert data["jobs"] == 1  # one run: one at a time, whatever --jobs said
    assert "runs at a time" not in (out / "ablation.md").read_text()
    assert json.loads((out / "ablation.json").read_text())["shared_trainer"]["batch_size"] == 16


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="a subprocess and its stderr")
def test_a_gif_path_under_a_file_is_one_line_and_no_matplotlib_warning(shared_run, tmp_path):
    """In a process of its own, so a warning matplotlib prints when a figure is collected shows."""
    (tmp_path / "file.txt").write_text("in the way\n")
    (tmp_path / "ok.csv").write_text("question,answer\n" + "." * 16 + ",1234341221434321\n")
    proc = subprocess.run([sys.executable, "-m", "agent_forge", "show", str(shared_run / "artifacts" / "model-0.json"),
                           "--data", str(tmp_path / "ok.csv"), "--gif", str(tmp_path / "file.txt" / "sub" / "x.gif")],
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 2
    assert proc.stderr.count("\n") == 1 and proc.stderr.startswith("error: --gif"), proc.stderr
    assert "Warning" not in proc.stderr


def test_run_phase_resuming_without_out_logs_the_run_it_picked(shared_run, tmp_path, monkeypatch, capsys):
    from agent_forge import logging as forge_logging
    from agent_forge import run_phase

    for key, value in forge_logging._settings.items():  # put the logging settings back afterwards
        monkeypatch.setitem(forge_logging._settings, key, value)
    forge_logging.configure_logging(json_logs=True)
    monkeypatch.chdir(tmp_path)
    picked = tmp_path / "runs" / "20260101-000000-cognate-trm_tiny-abcd"
    shutil.copytree(shared_run, picked)
    (picked / "result.json").unlink()
    capsys.readouterr()
    result = run_phase("cognate", variant="trm_tiny", overrides=TINY, max_steps=2, progress=False, resume=True)
    assert Path(result.run_dir) == picked.resolve() and result.status == "completed"
    events = [json.loads(line) for line in capsys.readouterr().err.splitlines() if line.startswith("{")]
    assert [e["run_dir"] for e in events if e["event"] == "resume.picked"] == [str(Path("runs") / picked.name)]
