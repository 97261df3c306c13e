"""Every ordinary mistake, in ONE table: exit 2, one clear line, nothing written.

The rule every case is held to (and the one the CLI follows for every error, usage errors that
typer's parser finds included):

* the exit code is 2;
* stderr holds exactly one line, and it starts with ``error: ``; it names the flag or field
  and the value given (a usage error also ends with ``see 'forge ... --help'``);
* no traceback (that takes ``--debug``);
* nothing is written: every file under the test's tmp dir (which is also the current
  directory, so a default ``runs/`` would land there) and under the data cache keeps its
  bytes, and no file or folder appears.

Add a case here for every new mistake the CLI catches, so the set only grows. The CLI runs in
this process (``agent_forge.cli.main``) for speed; cases that need a trained artifact share one
tiny artifact made once per module. ``scripts/test-paths.sh`` runs this file and test_cli.py
under a 10-character and a 200-character base temp; nothing here depends on path length.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from forge_testing import TINY, forge_main

SETS = [a for o in TINY for a in ("--set", o)]
#: A run that would train in about a second, should a case ever get that far.
RUN = ["run", "phase", "cognate", "--variant", "trm_tiny", "--no-progress", "--max-steps", "1", *SETS]


# -- set-ups: files a case needs, made before the "before" listing -------------------------------
def _folder(tmp: Path, art: dict) -> None:
    (tmp / "folder").mkdir()
    (tmp / "folder" / "keep.txt").write_text("untouched\n")


def _files(tmp: Path, art: dict) -> None:
    _folder(tmp, art)
    (tmp / "file.txt").write_text("a plain file\n")
    (tmp / "latin1.yaml").write_bytes("trainer:\n  lr: 0.01  # café\n".encode("latin-1"))
    (tmp / "blob.bin").write_bytes(bytes(range(256)) * 16)
    (tmp / "bad.csv").write_text("question,answer\n" + "." * 16 + ",1234341221434321\n"
                                 + "12x4" + "." * 12 + ",1234341221434321\n")
    (tmp / "ok.csv").write_text("question,answer\n" + "." * 16 + ",1234341221434321\n")
    (tmp / "empty.csv").write_bytes(b"")


def _public_src(tmp: Path, art: dict) -> None:
    """{tmp}/src: train.csv and test.csv in the public Sudoku-Extreme layout; {tmp}/bad: a row with an 'x'."""
    _files(tmp, art)
    row = "s," + "." * 81 + "," + "123456789" * 9 + ",0\n"
    for folder, rows in (("src", [row, row]), ("bad", [row, row.replace(".", "x", 1)])):
        (tmp / folder).mkdir()
        for split in ("train", "test"):
            (tmp / folder / f"{split}.csv").write_text("source,question,answer,rating\n" + "".join(rows))


def _unfinished(tmp: Path, art: dict) -> None:
    run = tmp / "run"
    (run / "checkpoints" / "step-00000002").mkdir(parents=True)
    (run / "checkpoints" / "step-00000002" / "state.json").write_text('{"format": "x"}\n')
    (run / "config.json").write_text('{"phase": "cognate", "config": {}}\n')
    (run / "metrics.jsonl").write_text('{"step": 1}\n{"step": 2}\n')


def _finished(tmp: Path, art: dict) -> None:
    _unfinished(tmp, art)
    (tmp / "run" / "result.json").write_text('{"status": "completed"}\n')


def _artifact_copy(tmp: Path, art: dict, *, garbage: bool = False, tamper: bool = False) -> None:
    shutil.copytree(art["dir"], tmp / "artifact")
    _files(tmp, art)
    weights, manifest = tmp / "artifact" / "model-0.safetensors", tmp / "artifact" / "model-0.json"
    if garbage:  # not safetensors, yet the manifest's size and sha256 match it (and it is re-sealed)
        from agent_forge.artifacts import DIGEST_FIELDS, manifest_digests

        data = b"\x93 certainly not a safetensors header \x00\xff" * 40
        weights.write_bytes(data)
        fields = {k: v for k, v in json.loads(manifest.read_text()).items() if k not in DIGEST_FIELDS}
        fields.update(sha256=hashlib.sha256(data).hexdigest(), size_bytes=len(data))
        fields.update(manifest_digests(fields))
        manifest.write_text(json.dumps(fields))
    if tamper:
        data = bytearray(weights.read_bytes())
        data[-3] ^= 0x01
        weights.write_bytes(bytes(data))


def _garbage(tmp: Path, art: dict) -> None:
    _artifact_copy(tmp, art, garbage=True)


def _tampered(tmp: Path, art: dict) -> None:
    _artifact_copy(tmp, art, tamper=True)


def _artifact(tmp: Path, art: dict) -> None:
    _artifact_copy(tmp, art)


def _artifact_and_folder(tmp: Path, art: dict) -> None:
    """The artifact, the usual files, and an official-layout folder {tmp}/sx (vocab 6, 16 cells)."""
    from forge_testing import official_sudoku4_folder

    _artifact_copy(tmp, art)
    official_sudoku4_folder(tmp / "sx", train=4, test=4)
    (tmp / "preds.npy").write_bytes(b"earlier predictions")


def _broken_folder(tmp: Path, art: dict) -> None:
    import numpy as np

    _artifact_and_folder(tmp, art)
    (tmp / "sx" / "test" / "dataset.json").write_text('{"pad_id": 0,')
    np.save(tmp / "sx" / "train" / "all__inputs.npy", np.array([{"x": 1}], dtype=object), allow_pickle=True)


def _keep_csv(tmp: Path, art: dict) -> None:
    """A 50-row data file the user made: a refused command must leave every byte of it."""
    rows = "".join(f"{'.' * 16},1234341221434321\n" for _ in range(50))
    (tmp / "keep.csv").write_text("question,answer\n" + rows)


def _wide_row(tmp: Path, art: dict) -> None:
    _artifact_copy(tmp, art)
    (tmp / "wide.csv").write_text("question,answer\n" + "." * 16 + ",1234341221434321\n"
                                  + "." * 16 + ",1234341221434321,surplus\n")


def _finished_real(tmp: Path, art: dict) -> None:
    """A real finished run (the shared one: trained 2 steps), as --out."""
    shutil.copytree(art["dir"].parent, tmp / "run")


def _finished_real_in_runs(tmp: Path, art: dict) -> None:
    """The same, where --resume without --out looks: runs/<stamp>-cognate-trm_tiny-<hex>."""
    shutil.copytree(art["dir"].parent, tmp / "runs" / "20260101-000000-cognate-trm_tiny-abcd")


def _symlinked(tmp: Path, art: dict) -> None:
    """An artifact whose weights file is a symlink to a file outside its folder."""
    _artifact_copy(tmp, art)
    weights = tmp / "artifact" / "model-0.safetensors"
    weights.rename(tmp / "elsewhere.safetensors")
    weights.symlink_to(tmp / "elsewhere.safetensors")


#: Set-ups whose cases need the shared trained artifact.
NEEDS_ARTIFACT = {_artifact, _garbage, _tampered, _wide_row, _finished_real, _finished_real_in_runs, _symlinked,
                  _artifact_and_folder, _broken_folder}
NO_CUDA = pytest.mark.skipif(torch.cuda.is_available(), reason="needs a machine without CUDA")
NO_WANDB = pytest.mark.skipif(__import__("importlib").util.find_spec("wandb") is not None,
                              reason="needs a machine without the wandb package")
ART = "{tmp}/artifact/model-0.json"

# (id, set-up, argv, what the error line must contain). In argv and the expected parts, {tmp}
# is the case's tmp dir (also the cwd). Every part must appear on the single error line; a part
# that starts with "!" must not.
CASES = [
    # -- run options (flags) ---------------------------------------------------------------------
    ("max-steps-zero", None, [*RUN, "--max-steps", "0"], ["--max-steps", "0", "greater than or equal to 1"]),
    ("max-steps-negative", None, [*RUN, "--max-steps", "-3"], ["--max-steps", "-3"]),
    ("max-steps-not-an-int", None, [*RUN, "--max-steps", "abc"], ["--max-steps", "'abc'", "integer", "--help"]),
    ("minutes-zero", None, [*RUN, "--minutes", "0"], ["--minutes", "0", "greater than 0"]),
    ("minutes-negative", None, [*RUN, "--minutes", "-1"], ["--minutes", "-1"]),
    ("checkpoint-every-zero", None, [*RUN, "--checkpoint-every", "0"], ["--checkpoint-every", "0"]),
    ("models-zero", None, [*RUN, "--models", "0"], ["--models", "'0'", "greater than or equal to 1"]),
    ("nproc-zero", None, [*RUN, "--nproc", "0"], ["--nproc", "'0'"]),
    ("unknown-flag", None, [*RUN, "--max-step", "5"], ["--max-step", "--max-steps"]),
    ("backend-unknown", None, [*RUN, "--backend", "carrier-pigeon"], ["--backend", "'carrier-pigeon'", "gloo"]),
    ("unknown-phase", None, ["run", "phase", "cognat"], ["'cognat'", "cognate"]),
    ("unknown-variant", None, ["run", "phase", "cognate", "--variant", "trm_smal"],
     ["'trm_smal'", "Did you mean 'trm_small'"]),
    ("unknown-task", None, [*RUN, "--task", "sudoku7"], ["'sudoku7'", "sudoku4"]),
    # -- --set and --config ----------------------------------------------------------------------
    ("set-bool-for-int", None, [*RUN, "--set", "trainer.batch_size=true"],
     ["trainer.batch_size", "True", "boolean", "number"]),
    ("set-bool-for-float", None, [*RUN, "--set", "trainer.lr=false"], ["trainer.lr", "False", "boolean"]),
    ("set-bool-in-a-list", None, [*RUN, "--set", "task.blanks=[true, 8]"], ["task.blanks", "True", "boolean"]),
    ("set-unclosed-brace", None, [*RUN, "--set", "model={d_model: 3"], ["--set", "model={d_model: 3", "close"]),
    ("set-without-equals", None, [*RUN, "--set", "trainer.lr"], ["--set", "trainer.lr", "KEY=VALUE"]),
    ("set-typo-key", None, [*RUN, "--set", "trainer.ema_decya=0.9"],
     ["trainer.ema_decya", "0.9", "Allowed keys"]),
    ("set-bad-value", None, [*RUN, "--set", "model.n=0"], ["model.n", "0", "greater than or equal to 1"]),
    ("set-unknown-section", None, [*RUN, "--set", "trainr.lr=1"], ["trainr", "Did you mean 'trainer'"]),
    ("set-models-zero", None, [*RUN, "--set", "models=0"], ["models", "0", ">= 1"]),
    ("device-not-a-device", None, [*RUN, "--set", "trainer.device=toaster"], ["trainer.device", "'toaster'", "cpu"]),
    ("device-cuda-index", None, [*RUN, "--set", "trainer.device=cuda:99"], ["trainer.device", "'cuda:99'"]),
    pytest.param("device-cuda-absent", None, [*RUN, "--set", "trainer.device=cuda"],
                 ["trainer.device", "'cuda'", "no CUDA device"], marks=NO_CUDA, id="device-cuda-absent"),
    ("config-folder", _folder, [*RUN, "--config", "{tmp}/folder"], ["--config", "{tmp}/folder", "folder"]),
    ("config-missing", None, [*RUN, "--config", "{tmp}/missing.toml"], ["--config", "{tmp}/missing.toml"]),
    ("config-not-utf8", _files, [*RUN, "--config", "{tmp}/latin1.yaml"], ["--config", "{tmp}/latin1.yaml", "UTF-8"]),
    ("config-unknown-suffix", _files, [*RUN, "--config", "{tmp}/file.txt"], ["--config", "{tmp}/file.txt", ".toml"]),
    # -- the run folder ----------------------------------------------------------------------------
    ("out-is-a-file", _files, [*RUN, "--out", "{tmp}/file.txt"], ["--out", "{tmp}/file.txt", "is a file"]),
    ("out-under-a-file", _files, [*RUN, "--out", "{tmp}/file.txt/sub"],
     ["cannot use", "{tmp}/file.txt/sub", "Not a directory", "choose another path"]),
    ("data-out-deep-under-a-file", _files,
     ["data", "generate", "sudoku4", "--count", "3", "--out", "{tmp}/file.txt/sub/x.csv"],
     ["cannot use", "file.txt/sub", "Not a directory"]),
    ("hard-4x4-has-no-such-puzzles", None,
     ["data", "generate", "sudoku4", "--count", "3", "--set", "hard=true", "--out", "{tmp}/hard.csv"],
     ["hard=true", "blanks=[8, 10]", "widen the blanks range", "hard=false"]),
    ("data-stats-empty-file", _files, ["data", "stats", "{tmp}/empty.csv"], ["{tmp}/empty.csv", "the file is empty"]),
    ("ablate-minutes-zero", None, ["ablate", "--variants", "trm_tiny", "--minutes", "0"], ["--minutes 0", "above 0"]),
    ("ablate-equal-time-zero", None, ["ablate", "--variants", "trm_tiny", "--equal-time", "0"],
     ["--equal-time 0", "above 0"]),
    ("ablate-equal-time-and-max-steps", None,
     ["ablate", "--variants", "trm_tiny", "--equal-time", "60", "--max-steps", "5"],
     ["--max-steps and --equal-time", "one training budget"]),
    ("ablate-arm-steps-not-a-number", None, ["ablate", "--variants", "trm_tiny", "--arm-steps", "trm_tiny=many"],
     ["--arm-steps", "trm_tiny=many", "ARM=STEPS"]),
    ("ablate-arm-steps-missing-arm", None,
     ["ablate", "--variants", "trm_tiny,baseline", "--arm-steps", "trm_tiny=5", *SETS],
     ["--arm-steps", "no steps for arm baseline"]),
    ("ablate-equal-time-compile-auto", None,
     ["ablate", "--variants", "trm_tiny", "--equal-time", "60", *SETS, "--set", "trainer.compile=auto"],
     ["--equal-time", "trainer.compile='auto'", "--set trainer.compile=false"]),
    ("ablate-out-is-a-file", _files, ["ablate", "--variants", "trm_tiny", *SETS, "--out", "{tmp}/file.txt"],
     ["--out", "{tmp}/file.txt", "is a file"]),
    ("out-unfinished-run", _unfinished, [*RUN, "--out", "{tmp}/run"], ["{tmp}/run", "unfinished", "--resume", "--out"]),
    ("out-finished-run", _finished, [*RUN, "--out", "{tmp}/run"], ["{tmp}/run", "finished", "--out"]),
    ("resume-without-checkpoint", None, [*RUN, "--resume", "--out", "{tmp}/new"],
     ["--resume", "{tmp}/new/checkpoints", "without --resume"]),
    ("resume-no-run-at-all", None, [*RUN, "--resume"], ["--resume", "cognate/trm_tiny", "--out"]),
    ("nproc-does-not-divide-batch", None, [*RUN, "--nproc", "3", "--out", "{tmp}/ddp"],
     ["trainer.batch_size=16", "--nproc 3", "multiple of 3"]),
    # -- pipelines: every phase checked first, the error names the phase ------------------------------
    ("pipeline-typo", None, ["run", "pipeline", "cognate,evomerge", "--variant", "trm_tiny", "--out", "{tmp}/pipe",
                             "--set", "trainer.ema_decya=0.9"], ["phase 'cognate'", "trainer.ema_decya", "0.9"]),
    ("pipeline-max-steps-zero", None, ["run", "pipeline", "cognate,evomerge", "--max-steps", "0", "--out", "{tmp}/p"],
     ["phase 'cognate'", "--max-steps", "0"]),
    ("pipeline-unknown-phase", None, ["run", "pipeline", "cognate,evomerj"], ["'evomerj'"]),
    # -- inspect / eval --------------------------------------------------------------------------------
    ("inspect-weights-file", _artifact, ["inspect", "{tmp}/artifact/model-0.safetensors"],
     ["{tmp}/artifact/model-0.safetensors", "{tmp}/artifact/model-0.json"]),
    ("inspect-folder", _folder, ["inspect", "{tmp}/folder"], ["{tmp}/folder", "folder"]),
    ("inspect-missing", None, ["inspect", "{tmp}/nothing.json"], ["{tmp}/nothing.json"]),
    ("inspect-not-a-manifest", _files, ["inspect", "{tmp}/blob.bin"], ["{tmp}/blob.bin", "manifest"]),
    ("inspect-tampered", _tampered, ["inspect", "{tmp}/artifact/model-0.json"],
     ["{tmp}/artifact/model-0.safetensors", "sha256", "Refusing"]),
    ("inspect-garbage-weights", _garbage, ["inspect", "{tmp}/artifact/model-0.json"],
     ["{tmp}/artifact/model-0.safetensors", "not a readable safetensors file"]),
    ("eval-garbage-weights", _garbage, ["eval", "{tmp}/artifact/model-0.json", "--data", "{tmp}/ok.csv"],
     ["{tmp}/artifact/model-0.safetensors", "not a readable safetensors file"]),
    ("eval-batch-size-zero", _artifact, ["eval", "{tmp}/artifact/model-0.json", "--data", "{tmp}/ok.csv",
                                         "--batch-size", "0"], ["--batch-size", "'0'", "--help"]),
    ("eval-data-folder", _artifact, ["eval", "{tmp}/artifact/model-0.json", "--data", "{tmp}/folder"],
     ["--data", "{tmp}/folder", "folder"]),
    ("eval-data-binary", _artifact, ["eval", "{tmp}/artifact/model-0.json", "--data", "{tmp}/blob.bin"],
     ["--data", "{tmp}/blob.bin", "not a text file"]),
    ("eval-data-missing", _artifact, ["eval", "{tmp}/artifact/model-0.json", "--data", "{tmp}/none.csv"],
     ["--data", "{tmp}/none.csv"]),
    ("eval-data-bad-row", _artifact, ["eval", "{tmp}/artifact/model-0.json", "--data", "{tmp}/bad.csv"],
     ["{tmp}/bad.csv", "row 3", "'x'"]),
    ("eval-weights-file", _artifact, ["eval", "{tmp}/artifact/model-0.safetensors", "--data", "{tmp}/ok.csv"],
     ["{tmp}/artifact/model-0.safetensors", "manifest"]),
    # -- eval on a dataset folder (official layout) and --save-predictions ------------------------------
    ("eval-folder-vocab-mismatch", _artifact_and_folder, ["eval", "{tmp}/artifact/model-0.json", "--data", "{tmp}/sx"],
     ["--data {tmp}/sx (split 'test')", "vocab_size is 6 in the data but 5 in the model"]),
    ("eval-folder-bad-json", _broken_folder, ["eval", "{tmp}/artifact/model-0.json", "--data", "{tmp}/sx"],
     ["{tmp}/sx/test/dataset.json", "not readable JSON"]),
    ("eval-folder-pickled-array", _broken_folder,
     ["eval", "{tmp}/artifact/model-0.json", "--data", "{tmp}/sx", "--split", "train"],
     ["{tmp}/sx/train/all__inputs.npy", "never unpickled"]),
    ("eval-folder-unknown-split", _artifact_and_folder,
     ["eval", "{tmp}/artifact/model-0.json", "--data", "{tmp}/sx", "--split", "val"], ["--split", "'val'", "train"]),
    ("eval-split-of-a-file", _artifact, ["eval", "{tmp}/artifact/model-0.json", "--data", "{tmp}/ok.csv",
                                         "--split", "train"], ["--split train", "{tmp}/ok.csv", "is a file"]),
    ("eval-predictions-exist", _artifact_and_folder,
     ["eval", "{tmp}/artifact/model-0.json", "--data", "{tmp}/ok.csv", "--save-predictions", "{tmp}/preds.npy"],
     ["--save-predictions", "{tmp}/preds.npy", "already exists", "--overwrite"]),
    ("eval-predictions-not-npy", _artifact,
     ["eval", "{tmp}/artifact/model-0.json", "--data", "{tmp}/ok.csv", "--save-predictions", "{tmp}/preds.csv"],
     ["--save-predictions", "{tmp}/preds.csv", ".npy"]),
    # -- data generate ---------------------------------------------------------------------------------
    ("data-out-folder", _folder, ["data", "generate", "sudoku4", "--count", "5", "--out", "{tmp}/folder"],
     ["--out", "{tmp}/folder", "folder"]),
    ("data-unknown-task", None, ["data", "generate", "sudoku7", "--out", "{tmp}/x.csv"], ["'sudoku7'"]),
    ("data-count-zero", None, ["data", "generate", "sudoku4", "--count", "0", "--out", "{tmp}/x.csv"],
     ["--count", "'0'"]),
    ("data-bool-for-int", None, ["data", "generate", "sudoku4", "--set", "blanks=true", "--out", "{tmp}/x.csv"],
     ["blanks", "True", "boolean"]),
    # -- data build / fetch (public data sets -> official dataset folders) ---------------------------
    ("data-build-unknown-name", None, ["data", "build", "sudoku", "{tmp}/src", "{tmp}/out"],
     ["NAME 'sudoku'", "sudoku-extreme", "maze-hard"]),
    ("data-build-no-src", None, ["data", "build", "maze-hard", "{tmp}/nothing", "{tmp}/out"],
     ["SRC {tmp}/nothing", "forge data fetch maze-hard"]),
    ("data-build-out-not-empty", _public_src, ["data", "build", "sudoku-extreme", "{tmp}/src", "{tmp}/folder"],
     ["OUT {tmp}/folder", "not empty", "--overwrite"]),
    ("data-build-overwrite-not-a-dataset", _public_src,
     ["data", "build", "sudoku-extreme", "{tmp}/src", "{tmp}/folder", "--overwrite"],
     ["OUT {tmp}/folder", "no dataset"]),
    ("data-build-bad-row", _public_src, ["data", "build", "sudoku-extreme", "{tmp}/bad", "{tmp}/out"],
     ["{tmp}/bad/train.csv: row 3", "'x'"]),
    ("data-build-augmentations-over-7", _public_src,
     ["data", "build", "maze-hard", "{tmp}/src", "{tmp}/out", "--augmentations", "9"],
     ["--augmentations 9", "0 to 7"]),
    ("data-build-negative-subsample", _public_src,
     ["data", "build", "sudoku-extreme", "{tmp}/src", "{tmp}/out", "--subsample", "0"], ["--subsample", "'0'"]),
    ("data-fetch-out-is-a-file", _files, ["data", "fetch", "maze-hard", "--out", "{tmp}/file.txt"],
     ["--out {tmp}/file.txt", "is a file"]),
    # -- issue 27: data that must never be lost ------------------------------------------------------
    ("data-out-exists", _keep_csv, ["data", "generate", "sudoku4", "--count", "3", "--out", "{tmp}/keep.csv"],
     ["--out", "{tmp}/keep.csv", "exists", "51 lines", "--overwrite"]),
    ("resume-finished-run", _finished_real, [*RUN, "--resume", "--out", "{tmp}/run"],
     ["--resume", "{tmp}/run", "finished run", "completed at step 2", "never changed", "--max-steps"]),
    ("resume-finished-run-fewer-steps", _finished_real,
     [*RUN, "--max-steps", "1", "--resume", "--out", "{tmp}/run"], ["--resume", "{tmp}/run", "finished run"]),
    ("resume-finished-run-without-out", _finished_real_in_runs, [*RUN, "--resume"],
     ["--resume", "no unfinished run", "runs/20260101-000000-cognate-trm_tiny-abcd", "is finished",
      "never changed"]),
    ("out-finished-real-run", _finished_real, [*RUN, "--out", "{tmp}/run"],
     ["--out", "{tmp}/run", "finished run", "never changed", "another --out"]),
    # -- issue 27: everything that can be checked is checked before the run folder is made -------------
    pytest.param("logger-package-missing", None, [*RUN, "--logger", "wandb", "--out", "{tmp}/r"],
                 ["logger 'wandb'", "pip install", "--logger"], marks=NO_WANDB, id="logger-package-missing"),
    ("evomerge-input-missing", None, ["run", "phase", "evomerge", "--set", "inputs=[{tmp}/nope.json]",
                                      "--out", "{tmp}/e"], ["evomerge.inputs", "{tmp}/nope.json", "does not exist"]),
    ("evomerge-input-not-a-manifest", _files, ["run", "phase", "evomerge", "--set", "inputs=[{tmp}/blob.bin]",
                                               "--out", "{tmp}/e"], ["{tmp}/blob.bin"]),
    ("evomerge-without-inputs", None, ["run", "phase", "evomerge", "--out", "{tmp}/e"],
     ["evomerge needs input models from an earlier phase", "evomerge.inputs"]),
    ("evomerge-variant", None, ["run", "phase", "evomerge", "--variant", "trm_tiny", "--out", "{tmp}/e"],
     ["--variant trm_tiny", "phase 'evomerge' has no variants", "--set"]),
    ("model-too-large-for-memory", None, [*RUN, "--set", "model.d_model=100000", "--out", "{tmp}/r"],
     ["out of memory before the start", "GiB", "available", "model.d_model (now 100000)"]),
    ("batch-too-large-for-memory", None, [*RUN, "--set", "model.d_model=1024", "--set", "trainer.batch_size=4000000",
                                          "--out", "{tmp}/r"],
     ["out of memory before the start", "trainer.batch_size (now 4000000)"]),
    ("seed-overflow", None, [*RUN, "--seed", "99999999999999999999999"],
     ["--seed", "99999999999999999999999", "4294967295"]),
    ("seed-negative-in-set", None, [*RUN, "--set", "seed=-1"], ["seed=-1", "0 to 4294967295"]),
    ("seed-plus-models-overflow", None, [*RUN, "--seed", "4294967295", "--models", "2"],
     ["seed=4294967295", "models=2", "4294967294"]),
    ("data-seed-negative", None, ["data", "generate", "sudoku4", "--seed", "-1", "--out", "{tmp}/x.csv"],
     ["--seed", "'-1'"]),
    # -- issue 27: tracebacks and misleading messages ----------------------------------------------------
    ("lr-inf", None, [*RUN, "--set", "trainer.lr=inf"], ["trainer.lr", "inf", "finite"]),
    ("lr-nan", None, [*RUN, "--set", "trainer.lr=nan"], ["trainer.lr", "nan", "finite"]),
    ("minutes-inf", None, [*RUN, "--minutes", "inf"], ["--minutes", "inf", "finite"]),
    ("float-in-a-list-nan", None, [*RUN, "--set", "trainer.betas=[0.9, .nan]"], ["trainer.betas[1]", "nan"]),
    ("pipeline-evomerge-first", None, ["run", "pipeline", "evomerge,cognate", "--variant", "trm_tiny",
                                       "--out", "{tmp}/p"],
     ["phase 'evomerge'", "needs input models from an earlier phase", "!unknown key"]),
    ("pipeline-eval-split-too-small", None, ["run", "pipeline", "cognate,evomerge", "--variant", "trm_tiny", *SETS,
                                             "--max-steps", "1", "--out", "{tmp}/p"],
     ["phase 'evomerge'", "evomerge.selection_samples=250", "32 rows", "--set evomerge.selection_samples=16"]),
    ("pipeline-set-reaches-evomerge-checked", None,
     ["run", "pipeline", "cognate,evomerge", "--variant", "trm_tiny", *SETS, "--max-steps", "1",
      "--set", "evomerge.selection_samples=40", "--out", "{tmp}/p"], ["evomerge.selection_samples=40", "32 rows"]),
    ("inspect-run-folder", _finished_real, ["inspect", "{tmp}/run"],
     ["{tmp}/run", "is a run folder", "{tmp}/run/artifacts/model-0.json", "!exported"]),
    ("inspect-weights-symlink-outside", _symlinked, ["inspect", ART],
     [ART, "symlink", "{tmp}/elsewhere.safetensors", "outside the artifact's folder"]),
    ("eval-n-sup-too-many", _artifact, ["eval", ART, "--data", "{tmp}/ok.csv", "--n-sup", "100000"],
     ["--n-sup", "100000", "1024"]),
    ("show-n-sup-too-many", _artifact, ["show", ART, "--data", "{tmp}/ok.csv", "--n-sup", "100000"],
     ["--n-sup", "100000", "1024"]),
    ("data-count-too-many", None, ["data", "generate", "sudoku4", "--count", "99999999999", "--out", "{tmp}/x.csv"],
     ["--count", "99999999999", "10000000"]),
    pytest.param("eval-device-cuda-absent", _artifact, ["eval", ART, "--data", "{tmp}/ok.csv", "--device", "cuda"],
                 ["--device", "'cuda'", "no CUDA device", "!trainer.device"], marks=NO_CUDA,
                 id="eval-device-cuda-absent"),
    ("eval-device-not-a-device", _artifact, ["eval", ART, "--data", "{tmp}/ok.csv", "--device", "toaster"],
     ["--device", "'toaster'", "!trainer.device"]),
    ("eval-csv-row-too-wide", _wide_row, ["eval", ART, "--data", "{tmp}/wide.csv"],
     ["{tmp}/wide.csv", "row 3", "3 fields", "header (row 1) has 2"]),
    ("stats-csv-row-too-wide", _wide_row, ["data", "stats", "{tmp}/wide.csv"], ["{tmp}/wide.csv", "row 3"]),
    ("blanks-error-names-hard-only-when-set", None,
     ["data", "generate", "sudoku4", "--count", "3", "--set", "blanks=15", "--set", "hard=false",
      "--out", "{tmp}/x.csv"], ["blanks=[15, 15]", "!hard=true"]),
    ("gif-under-a-file", _artifact, ["show", ART, "--data", "{tmp}/ok.csv", "--gif", "{tmp}/file.txt/sub/x.gif"],
     ["--gif", "{tmp}/file.txt", "is a file"]),
]


@pytest.fixture(scope="module")
def shared_artifact(tmp_path_factory):
    """One tiny trained artifact (a few steps) for every case that needs one."""
    from agent_forge import run_phase

    out = tmp_path_factory.mktemp("shared") / "run"
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("FORGE_CACHE_DIR", str(tmp_path_factory.getbasetemp() / "cache"))
        result = run_phase("cognate", variant="trm_tiny", overrides=TINY, max_steps=2, progress=False, out=out)
    return {"dir": result.artifacts[0].manifest_path.parent}


def _listing(*roots: Path) -> dict[str, str]:
    """Every file and folder under ``roots``, a file with the sha256 of its bytes."""
    out: dict[str, str] = {}
    for root in roots:
        if not root.exists():
            continue
        for path in sorted(root.rglob("*")):
            key = str(path)
            out[key] = "dir" if path.is_dir() else hashlib.sha256(path.read_bytes()).hexdigest()
    return out


def assert_one_error_line(code: int, err: str, parts: list[str]) -> str:
    assert code == 2, err
    assert "Traceback" not in err, err
    lines = [line for line in err.splitlines() if line.strip()]
    assert len(lines) == 1, f"expected one line on stderr, got:\n{err}"
    line = lines[0]
    assert line.startswith("error: "), line
    for part in parts:
        if part.startswith("!"):
            assert part[1:] not in line, f"{part[1:]!r} in: {line}"
        else:
            assert part in line, f"{part!r} not in: {line}"
    return line


@pytest.mark.parametrize("case_id, setup, argv, parts", [c if hasattr(c, "marks") else pytest.param(*c, id=c[0])
                                                        for c in CASES])
def test_an_ordinary_mistake_is_one_error_line_and_writes_nothing(case_id, setup, argv, parts, tmp_path, capsys,
                                                                  monkeypatch, request):
    monkeypatch.chdir(tmp_path)
    cache = Path(os.environ["FORGE_CACHE_DIR"])
    art = (request.getfixturevalue("shared_artifact")
           if setup in (_artifact, _garbage, _tampered, _artifact_and_folder, _broken_folder) else {})
    art = request.getfixturevalue("shared_artifact") if setup in NEEDS_ARTIFACT else {}
    if setup is not None:
        setup(tmp_path, art)
    fill = {"{tmp}": str(tmp_path)}

    def filled(text: str) -> str:
        for key, value in fill.items():
            text = text.replace(key, value)
        return text

    before = _listing(tmp_path, cache, *([art["dir"]] if art else []))
    code, out, err = forge_main([filled(a) for a in argv], capsys)
    assert_one_error_line(code, err, [filled(p) for p in parts])
    assert out == ""
    assert _listing(tmp_path, cache, *([art["dir"]] if art else [])) == before, "the refused command wrote something"


def test_the_table_covers_every_kind_of_mistake_named_in_the_issue():
    ids = {c.id if hasattr(c, "id") else c[0] for c in CASES}
    for needed in ("max-steps-zero", "minutes-zero", "checkpoint-every-zero", "models-zero", "set-bool-for-int",
                   "set-unclosed-brace", "config-folder", "config-not-utf8", "eval-batch-size-zero",
                   "eval-data-folder", "eval-data-binary", "inspect-weights-file", "backend-unknown",
                   "data-out-folder", "out-is-a-file", "eval-garbage-weights", "inspect-garbage-weights",
                   "max-steps-not-an-int", "unknown-variant", "set-typo-key", "out-unfinished-run",
                   "resume-without-checkpoint", "nproc-does-not-divide-batch", "pipeline-typo",
                   # issue 27 (the cases that end in a refusal; the rest are in test_data_safety.py)
                   "data-out-exists", "resume-finished-run", "resume-finished-run-fewer-steps",
                   "resume-finished-run-without-out", "logger-package-missing", "evomerge-input-missing",
                   "model-too-large-for-memory", "seed-overflow", "lr-inf", "lr-nan", "pipeline-evomerge-first",
                   "pipeline-eval-split-too-small", "inspect-run-folder", "inspect-weights-symlink-outside",
                   "eval-n-sup-too-many", "data-count-too-many", "eval-device-cuda-absent", "eval-csv-row-too-wide",
                   "blanks-error-names-hard-only-when-set", "gif-under-a-file"):
        assert needed in ids, needed


def test_debug_shows_the_traceback(tmp_path, capsys, monkeypatch):
    from agent_forge.errors import ConfigError

    monkeypatch.chdir(tmp_path)
    from agent_forge.cli import main

    with pytest.raises(ConfigError, match="trainer.ema_decya"):
        main(["--debug", *RUN, "--set", "trainer.ema_decya=0.9"])
    assert list(tmp_path.iterdir()) == []


def test_load_artifact_refuses_garbage_weights_with_a_matching_checksum(shared_artifact, tmp_path):
    from agent_forge import load_artifact
    from agent_forge.errors import ArtifactError

    _garbage(tmp_path, shared_artifact)
    with pytest.raises(ArtifactError, match="not a readable safetensors file"):
        load_artifact(tmp_path / "artifact" / "model-0.json")
    with pytest.raises(ArtifactError, match="is the weights file"):
        load_artifact(tmp_path / "artifact" / "model-0.safetensors")


def test_a_path_over_200_characters_stays_whole_on_one_line(tmp_path):
    """A narrow terminal (COLUMNS=40) and a long path: the error line is never wrapped or cut."""
    deep = tmp_path / ("d" * 70) / ("e" * 70) / ("f" * 70)
    deep.mkdir(parents=True)
    target = deep / "a-plain-file.txt"
    target.write_text("not a folder\n")
    assert len(str(target)) > 200
    env = {**os.environ, "COLUMNS": "40", "FORGE_LOAD_ENTRYPOINTS": "0"}
    for argv, parts in ((["run", "phase", "cognate", "--out", str(target)], [str(target)]),
                        (["inspect", str(deep / "missing.json")], [str(deep / "missing.json")]),
                        (["run", "phase", "cognate", "--max-steps", str(target)], ["--max-steps", str(target)])):
        proc = subprocess.run([sys.executable, "-m", "agent_forge", *argv], capture_output=True, text=True,
                              env=env, cwd=tmp_path, timeout=120)
        assert_one_error_line(proc.returncode, proc.stderr, parts)
