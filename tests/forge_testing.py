"""Helpers shared by the tests (importable because pytest puts tests/ on sys.path)."""

from agent_forge.phases.cognate import Callback, CallbackSpec

#: Overrides that make any Cognate variant train in about a second.
TINY = [
    "task.name=sudoku4", "task.train_count=64", "task.eval_count=32", "task.blanks=[6, 8]",
    "model.d_model=32", "model.n_layers=1", "model.n_heads=2", "model.n=1", "model.T=2", "model.n_sup=3",
    "trainer.batch_size=16", "trainer.log_every=2", "trainer.eval_every=4", "trainer.eval_samples=16",
    "trainer.eval_batch_size=32", "trainer.warmup_steps=2", "trainer.precision=fp32", "trainer.threads=1",
]


#: ``forge`` in a child process that waits at a step it reports (see the file's docstring).
CHILD = str(__import__("pathlib").Path(__file__).resolve().parent / "forge_child.py")


#: Children started by paused_child; a test that fails before its child exits leaves none behind.
CHILDREN: list = []


def paused_child(args, pause, tmp_path, extra_env=None, cwd=None, ranks=1):
    """Start ``forge ARGS`` as a child that waits at ``pause`` (``after_step:7``, ``before_step:12``,
    ``after_generation:2``); return the Popen once the child says it is there (a blocking read
    of its stdout: no delay, no polling), in ``ranks`` processes of a ``--nproc`` run. Its stderr
    goes to ``tmp_path/child.stderr``."""
    import os
    import subprocess
    import sys

    env = {**os.environ, "PYTHONUNBUFFERED": "1", "FORGE_TEST_PAUSE": pause, **(extra_env or {})}
    with open(tmp_path / "child.stderr", "w") as err:
        proc = subprocess.Popen([sys.executable, CHILD, *args], stdout=subprocess.PIPE, stderr=err, text=True,
                                env=env, cwd=cwd)
    CHILDREN.append(proc)  # killed after the test if it is still waiting (tests/conftest.py)
    for _ in range(ranks):
        line = proc.stdout.readline()  # blocks until the run is there, or has ended without getting there
        if "paused " not in line:  # a launcher may prefix its ranks' lines ("[rank1]:")
            proc.kill()
            proc.communicate()
            raise AssertionError(f"the child never reached {pause}: {line!r}\n"
                                 + (tmp_path / "child.stderr").read_text()[-3000:])
    return proc


def free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class RowRecorder(Callback):
    """A training callback that records the puzzles this rank started, per step, and how many
    parameter, optimizer and EMA elements this rank holds (test only)."""

    def __init__(self, cfg) -> None:
        self.rows: list[list[bytes]] = []
        self.sizes: dict[str, int] = {}

    def on_fit_start(self, trainer, state) -> None:
        self.sizes["params_local"] = sum(_local(p).numel() for p in state.model.parameters())
        self.sizes["params_full"] = sum(p.numel() for p in state.model.parameters())

    def on_fit_end(self, trainer, state) -> None:
        moments = [s["exp_avg"] for s in state.optimizer.state.values()]
        self.sizes["adam_moment_local"] = sum(_local(m).numel() for m in moments)
        ema = state.callbacks.get("ema")
        if ema is not None:
            self.sizes["ema_local"] = sum(_local(t).numel() for t in ema.shadow.values())

    def on_step_start(self, trainer, state) -> None:
        rows = state.rows
        fresh = state.fresh[rows]
        inputs = state.batch["inputs"][rows][fresh]
        self.rows.append([bytes(r.tolist()) for r in inputs])  # tokens are < 256


def _local(t):
    """This rank's part of a tensor: a DTensor's shard, or the whole tensor."""
    return t.to_local() if hasattr(t, "to_local") else t


class _RecorderPlugin:
    recorders: list = []

    @staticmethod
    def _make(cfg):
        rec = RowRecorder(cfg)
        _RecorderPlugin.recorders.append(rec)
        return rec


def _register_recorder():
    from pydantic import BaseModel, ConfigDict

    from agent_forge import hookimpl

    class Empty(BaseModel):
        model_config = ConfigDict(extra="forbid")

    class Plugin:
        @hookimpl
        def forge_register_callbacks(self, register):
            register(CallbackSpec("record_rows", _RecorderPlugin._make, config=Empty))

    return Plugin()


def distributed_worker(rank: int, world: int, port: int, out: str, overrides: list[str], max_steps: int) -> None:
    """One rank of an in-process distributed run (torch.multiprocessing.spawn target)."""
    import json
    import os

    os.environ.update(RANK=str(rank), WORLD_SIZE=str(world), LOCAL_RANK=str(rank), MASTER_ADDR="127.0.0.1",
                      MASTER_PORT=str(port), FORGE_LOAD_ENTRYPOINTS="0", FORGE_DIST_BACKEND="gloo")
    from agent_forge import distributed, run_phase
    from agent_forge.plugin_host import load_plugins

    host = load_plugins(entry_points=False, extra=(_register_recorder(),))
    try:
        run_phase("cognate", host=host, variant="trm_tiny", overrides=overrides + ["callbacks.record_rows={}"],
                  max_steps=max_steps, progress=False, out=out)
        recorder = _RecorderPlugin.recorders[-1]
        rows = [[r.hex() for r in step] for step in recorder.rows]
        with open(os.path.join(out, f"rows-rank{rank}.json"), "w") as f:
            json.dump({"rows": rows, "sizes": recorder.sizes}, f)
    finally:
        distributed.shutdown()


def flat_tensors(tree, prefix=""):
    """Every tensor of a nested dict/list structure, keyed by its path (for exact comparisons)."""
    import torch

    out = {}
    if isinstance(tree, torch.Tensor):
        out[prefix] = tree
    elif isinstance(tree, dict):
        for k, v in tree.items():
            out.update(flat_tensors(v, f"{prefix}/{k}"))
    elif isinstance(tree, (list, tuple)):
        for i, v in enumerate(tree):
            out.update(flat_tensors(v, f"{prefix}/{i}"))
    return out


def assert_same_training_state(a, b):
    """Model, optimizer and EMA of two training-state payloads are bit-identical."""
    import torch

    for part in ("model", "optimizer"):
        flat_a, flat_b = flat_tensors(a[part]), flat_tensors(b[part])
        assert flat_a.keys() == flat_b.keys()
        for key in flat_a:
            assert torch.equal(flat_a[key], flat_b[key]), f"{part}{key} differs after resume"
    ema_a, ema_b = flat_tensors(a["callbacks"]["ema"]), flat_tensors(b["callbacks"]["ema"])
    assert ema_a and ema_a.keys() == ema_b.keys()
    for key in ema_a:
        assert torch.equal(ema_a[key], ema_b[key]), f"ema{key} differs after resume"


#: Model and trainer overrides of TINY, for a task other than sudoku4 (e.g. --task official).
TINY_MODEL = [o for o in TINY if not o.startswith("task.")]


def official_sudoku4_folder(path, *, train: int = 48, test: int = 16, seed: int = 0, ignore_givens: bool = False):
    """A dataset folder in the official layout holding 4x4 Sudoku, encoded as the official
    Sudoku builder encodes 9x9 (0 pad, 1 blank, digit d as d + 1; vocab 6; one example per
    puzzle and group; identifiers all 0). ``ignore_givens``: the labels of given cells are
    ``ignore_label_id`` (0), so those cells are not scored. Returns ``path``."""
    import numpy as np

    from agent_forge.plugins.datasets.official_folder import OfficialMetadata, OfficialSet, write_split
    from agent_forge.plugins.datasets.sudoku import generate

    for split, count, salt in (("train", train, 0), ("test", test, 1)):
        puzzles, solutions = generate(4, count, (6, 8), seed * 10 + salt, cache=False)
        labels = solutions + 1
        if ignore_givens:
            labels[puzzles != 0] = 0
        meta = OfficialMetadata(pad_id=0, ignore_label_id=0, blank_identifier_id=0, vocab_size=6, seq_len=16,
                                num_puzzle_identifiers=1, total_groups=count, mean_puzzle_examples=1,
                                total_puzzles=count, sets=["all"])
        index = np.arange(count + 1, dtype=np.int32)
        write_split(path, split, meta, {"all": OfficialSet(puzzles + 1, labels, np.zeros(count, np.int32), index,
                                                           index.copy())})
    return path


def forge_main(argv: list[str], capsys) -> tuple[int, str, str]:
    """Run ``forge ARGV`` in this process: (exit code, stdout, stderr) as captured by ``capsys``."""
    from agent_forge.cli import main

    capsys.readouterr()
    try:
        main(list(argv))
        code = 0
    except SystemExit as exc:
        code = exc.code if isinstance(exc.code, int) else 1
    out, err = capsys.readouterr()
    return code, out, err


def tiny_cognate_run(out):
    """A 4-step ``trm_tiny`` Cognate run with :data:`TINY` into ``out``: (plugin host, PhaseResult)."""
    from agent_forge import run_phase
    from agent_forge.plugin_host import load_plugins

    host = load_plugins(entry_points=False)
    result = run_phase("cognate", host=host, variant="trm_tiny", overrides=list(TINY), max_steps=4, progress=False,
                       out=str(out))
    return host, result
