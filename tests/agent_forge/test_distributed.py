"""Two gloo processes on the CPU against one: same weights, disjoint data, faults and resume."""

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest
import torch
import torch.multiprocessing as mp
from safetensors.torch import load_file

from agent_forge.checkpoint import load_train_state
from forge_testing import TINY, assert_same_training_state, distributed_worker, free_port, paused_child

pytestmark = pytest.mark.skipif(not torch.distributed.is_available(), reason="torch.distributed unavailable")

# No EMA/ACT randomness is removed: the global batch's bookkeeping is replicated on every rank,
# so exploration draws and refills are the ones a single process makes.
OVERRIDES = [o for o in TINY if o != "trainer.threads=1"] + ["trainer.threads=1", "trainer.eval_every=null"]


def _spawn(world: int, out: Path, steps: int, extra: tuple[str, ...] = ()) -> None:
    mp.spawn(distributed_worker, args=(world, free_port(), str(out), OVERRIDES + list(extra), steps), nprocs=world,
             join=True)


def _weights(out: Path) -> dict[str, torch.Tensor]:
    return load_file(str(out / "artifacts" / "model-0.safetensors"))


def _worst_difference(a: dict[str, torch.Tensor], b: dict[str, torch.Tensor]) -> float:
    assert set(a) == set(b)
    return max(float((a[k].double() - b[k].double()).abs().max()) for k in a)


def test_two_ranks_match_one_process_with_the_same_global_batch(tmp_path):
    _spawn(2, tmp_path / "two", steps=8)
    _spawn(1, tmp_path / "one", steps=8)
    # Not bit-identical: gloo sums the two ranks' gradient halves, where one process sums the
    # whole batch in one reduction; the float rounding differs at ~1e-7 and grows with steps.
    worst = _worst_difference(_weights(tmp_path / "two"), _weights(tmp_path / "one"))
    assert worst < 1e-4, worst
    def rows(run):
        return [r for r in map(json.loads, (run / "metrics.jsonl").read_text().splitlines()) if r["kind"] == "train"]

    train, single = rows(tmp_path / "two"), rows(tmp_path / "one")
    assert train
    assert [r["step"] for r in train] == [r["step"] for r in single]
    for a, b in zip(train, single):  # global (all-reduced) figures, not rank 0's half
        assert a["loss"] == pytest.approx(b["loss"], rel=1e-4)
        assert a["train_token_accuracy"] == pytest.approx(b["train_token_accuracy"])
    config = json.loads((tmp_path / "two" / "config.json").read_text())
    assert config["world_size"] == 2 and config["config"]["trainer"]["batch_size"] == 16


def test_each_rank_trains_on_its_own_rows_without_overlap(tmp_path):
    _spawn(2, tmp_path / "two", steps=12)
    ranks = [json.loads((tmp_path / "two" / f"rows-rank{r}.json").read_text())["rows"] for r in range(2)]
    assert len(ranks[0]) == len(ranks[1]) == 12  # the same number of steps on both ranks
    # The global stream in draw order: each step, rank 0's new rows, then rank 1's.
    order = [(r, row) for step in range(12) for r in (0, 1) for row in ranks[r][step]]
    epoch = 64  # train_count
    assert len(order) >= epoch
    first = order[:epoch]
    assert len({row for _, row in first}) == epoch  # one epoch: every puzzle exactly once...
    assert {r for r, _ in first} == {0, 1}  # ...split between the ranks, none on both
    on_both = {row for r, row in first if r == 0} & {row for r, row in first if r == 1}
    assert not on_both


def _rank_pid(launcher: int, rank: int) -> int | None:
    """The pid of ``rank`` among the launcher's own children (never another run's rank: other
    runs may be going on on the same machine)."""
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            env = (entry / "environ").read_bytes().split(b"\0")
            cmd = (entry / "cmdline").read_bytes()
            parent = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
        except (OSError, ValueError, IndexError):
            continue
        ours = b"agent_forge" in cmd or b"forge_child" in cmd  # forge, or the tests' pausing forge
        if parent == launcher and f"RANK={rank}".encode() in env and ours:
            return int(entry.name)
    return None


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="finds the rank through /proc")
def test_a_killed_rank_fails_the_job_and_resume_finishes(tmp_path):
    """Rank 1 waits before step 11, with step 10's checkpoint saved (tests/forge_child.py), and is
    killed there; the launcher stops the job with one line naming the rank, and --resume
    continues from that checkpoint. No clock: the job must end on its own (the generous
    communicate timeout only stops a hung test), and how fast is not what is tested."""
    out = tmp_path / "run"
    args = ["run", "phase", "cognate", "--variant", "trm_tiny", *[x for o in OVERRIDES for x in ("--set", o)],
            "--max-steps", "4000", "--checkpoint-every", "10", "--json", "--out", str(out), "--no-progress",
            "--nproc", "2"]
    env = {"FORGE_DIST_TIMEOUT_S": "60", "FORGE_TEST_PAUSE_RANK": "1"}
    proc = paused_child(args, "before_step:10", tmp_path, extra_env=env)
    victim = _rank_pid(proc.pid, 1)
    assert victim is not None
    os.kill(victim, signal.SIGKILL)
    proc.communicate(timeout=240)
    stderr = (tmp_path / "child.stderr").read_text()
    assert proc.returncode == 2, stderr[-3000:]
    assert "rank 1" in stderr and "SIGKILL" in stderr and "--resume" in stderr
    latest = out / "checkpoints" / "latest.json"
    step = json.loads(latest.read_text())["step"]
    assert step == 10

    resumed = subprocess.run([sys.executable, "-m", "agent_forge", *args[:args.index("--max-steps") + 1],
                              str(step + 20), *args[args.index("--max-steps") + 2:], "--resume"],
                             capture_output=True, text=True, env={**os.environ, **env}, timeout=300)
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    result = json.loads(resumed.stdout)
    assert result["status"] == "completed"
    assert json.loads(latest.read_text())["step"] == step + 20  # continued from the kill's checkpoint


def test_resume_with_another_world_size_is_refused(tmp_path):
    out = tmp_path / "run"
    base = [sys.executable, "-m", "agent_forge", "run", "phase", "cognate", "--variant", "trm_tiny",
            *[x for o in OVERRIDES for x in ("--set", o)], "--checkpoint-every", "2", "--out", str(out),
            "--no-progress"]
    first = subprocess.run([*base, "--max-steps", "2", "--nproc", "2"], capture_output=True, text=True, timeout=300)
    assert first.returncode == 0, first.stderr[-3000:]
    (out / "result.json").unlink()  # pretend it was cut off after its checkpoint
    again = subprocess.run([*base, "--max-steps", "4", "--resume"], capture_output=True, text=True, timeout=300)
    assert again.returncode == 2
    assert "written by 2 process(es)" in again.stderr and "--nproc 2" in again.stderr


def test_global_batch_must_divide_among_ranks(tmp_path):
    proc = subprocess.run([sys.executable, "-m", "agent_forge", "run", "phase", "cognate", "--variant", "trm_tiny",
                           *[x for o in OVERRIDES for x in ("--set", o)], "--set", "trainer.batch_size=15",
                           "--max-steps", "2", "--out", str(tmp_path / "r"), "--no-progress", "--nproc", "2"],
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 2
    assert "trainer.batch_size=15" in proc.stderr and "multiple of 2" in proc.stderr
    # Refused once, in the launching process, before any rank started or anything was written.
    assert proc.stderr.count("error:") == 1 and "rerun" not in proc.stderr and "rank" not in proc.stderr
    assert not (tmp_path / "r").exists()


@pytest.mark.parametrize("parallel", ["ddp", "fsdp"])
def test_resume_with_the_same_world_size_continues_exactly(tmp_path, parallel):
    def run(out, steps, *extra):
        proc = subprocess.run([sys.executable, "-m", "agent_forge", "run", "phase", "cognate", "--variant", "trm_tiny",
                               *[x for o in OVERRIDES for x in ("--set", o)], "--set", "trainer.schedule=constant",
                               "--set", f"trainer.parallel={parallel}",
                               "--checkpoint-every", "4", "--max-steps", str(steps), "--out", str(out),
                               "--no-progress", "--nproc", "2", *extra], capture_output=True, text=True, timeout=300)
        assert proc.returncode == 0, proc.stderr[-3000:]

    run(tmp_path / "straight", 8)
    run(tmp_path / "cut", 4)
    (tmp_path / "cut" / "result.json").unlink()
    run(tmp_path / "cut", 8, "--resume")
    a = load_file(str(tmp_path / "straight" / "artifacts" / "model-0.safetensors"))
    b = load_file(str(tmp_path / "cut" / "artifacts" / "model-0.safetensors"))
    assert all(torch.equal(a[k], b[k]) for k in a)


def test_fsdp_shards_the_state_and_matches_one_process(tmp_path):
    # Evaluations during training too: a forward without backward must leave FSDP ready to train.
    fsdp = ("trainer.parallel=fsdp", "trainer.eval_every=3")
    _spawn(2, tmp_path / "fsdp", steps=8, extra=fsdp)
    _spawn(1, tmp_path / "one", steps=8, extra=fsdp)  # one process: parallel is ignored
    # The same tolerance and reason as DDP: FSDP reduce-scatters the two gradient halves.
    worst = _worst_difference(_weights(tmp_path / "fsdp"), _weights(tmp_path / "one"))
    assert worst < 1e-4, worst
    sizes = [json.loads((tmp_path / "fsdp" / f"rows-rank{r}.json").read_text())["sizes"] for r in range(2)]
    full = sizes[0]["params_full"]
    for key in ("params_local", "adam_moment_local", "ema_local"):
        # Each rank holds a part (dim-0 shards, so halves up to rounding), together the whole.
        assert all(s[key] < full for s in sizes), (key, sizes)
        assert sum(s[key] for s in sizes) == full, (key, sizes)
    single = json.loads((tmp_path / "one" / "rows-rank0.json").read_text())["sizes"]
    assert single["params_local"] == single["adam_moment_local"] == single["ema_local"] == full
    report = json.loads((tmp_path / "fsdp" / "result.json").read_text())
    assert report["status"] == "completed"
    assert report["metrics"]["ema/exact_accuracy"] == pytest.approx(
        json.loads((tmp_path / "one" / "result.json").read_text())["metrics"]["ema/exact_accuracy"])


@pytest.mark.parametrize("parallel", ["ddp", "fsdp"])
def test_the_memory_bank_is_written_from_the_global_batch(tmp_path, parallel):
    memory = ("model.memory=full", "model.memory_capacity=8", "callbacks.memory={}", f"trainer.parallel={parallel}")
    _spawn(2, tmp_path / "two", steps=8, extra=memory)
    _spawn(1, tmp_path / "one", steps=8, extra=memory)
    two, one = _weights(tmp_path / "two"), _weights(tmp_path / "one")
    # The bank is a buffer: it holds what one process would have written (the surprising rows
    # of the whole batch, in the same slots), not only rank 0's rows.
    assert int(one["memory.filled"].sum()) > 0
    assert torch.equal(two["memory.filled"], one["memory.filled"])
    assert int(two["memory.writes"]) == int(one["memory.writes"])
    assert _worst_difference(two, one) < 1e-4


# An lm_* preset at test size: byte tokens (vocab 257), one narrow layer, a few short windows.
LM_SHRUNK = ["model.d_model=32", "model.n_layers=1", "model.n_heads=2", "model.n_kv_heads=1", "model.head_dim=null",
             "model.n=1", "model.n_sup=2", "task.seq_len=32", "task.vocab_size=257", "task.max_documents=40",
             "task.max_sequences=200", "trainer.batch_size=4", "trainer.eval_batch_size=4", "trainer.eval_samples=4",
             "trainer.log_every=1", "trainer.eval_every=2", "trainer.warmup_steps=2", "trainer.precision=fp32",
             "trainer.threads=1"]


@pytest.mark.parametrize("variant,overrides", [
    ("lm_conservative", LM_SHRUNK),
    ("trm_tiny", OVERRIDES + ["callbacks.act=null", "trainer.eval_every=2"]),
], ids=["lm_preset", "act_off"])
def test_ddp_trains_models_without_act(tmp_path, variant, overrides):
    # Without ACT nothing trains a Q-head; DDP used to fail at step 2 ("Expected to have finished
    # reduction"), because the head ran but no loss reached it. Now such a model has none.
    out = tmp_path / "run"
    proc = subprocess.run([sys.executable, "-m", "agent_forge", "run", "phase", "cognate", "--variant", variant,
                           *[x for o in overrides for x in ("--set", o)], "--max-steps", "3", "--out", str(out),
                           "--no-progress", "--json", "--nproc", "2"], capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert json.loads(proc.stdout)["status"] == "completed" and json.loads(proc.stdout)["metrics"]["steps"] == 3
    config = json.loads((out / "config.json").read_text())["config"]
    assert config["model"]["halting_head"] is False and "act" not in config["callbacks"]
    evals = [json.loads(l) for l in (out / "metrics.jsonl").read_text().splitlines() if '"eval"' in l]
    assert evals and not any("halt" in key for row in evals for key in row)  # no made-up halting figures


INTERRUPT_STEPS = 60


def _interrupt_cmd(out: Path, every: int) -> list[str]:
    return [sys.executable, "-m", "agent_forge", "run", "phase", "cognate", "--variant", "trm_tiny",
            *[x for o in OVERRIDES + ["trainer.log_every=1"] for x in ("--set", o)],
            "--max-steps", str(INTERRUPT_STEPS), "--checkpoint-every", str(every), "--out", str(out),
            "--no-progress", "--nproc", "2"]


def _final_training_state(out: Path) -> dict:
    latest = json.loads((out / "checkpoints" / "latest.json").read_text())
    assert latest["step"] == INTERRUPT_STEPS
    return load_train_state(out / "checkpoints" / latest["checkpoint"])


@pytest.fixture(scope="module")
def uninterrupted_two_ranks(tmp_path_factory):
    # Checkpoints every step: the last one is saved periodically *and* at the end of the run.
    out = tmp_path_factory.mktemp("straight") / "run"
    proc = subprocess.run(_interrupt_cmd(out, every=1), capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0 and "Traceback" not in proc.stderr, proc.stderr[-3000:]
    return _final_training_state(out)


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="signals a process group member by pid")
@pytest.mark.parametrize("every, at", [(1, 7), (1000, 11)], ids=["on-a-checkpoint-step", "between-checkpoints"])
def test_sigterm_to_the_launcher_saves_every_rank_and_resume_is_bit_identical(tmp_path, uninterrupted_two_ranks,
                                                                             every, at):
    # every=1: the interrupted step was just saved periodically, so the interrupt's save must be
    # skipped on every rank alike (it once let rank 1 enter the gathers alone and crash).
    # every=1000: no periodic checkpoint before the end; the interrupt's save is the only one.
    # Both ranks wait right after step `at` (tests/forge_child.py) until the signal reaches them.
    out = tmp_path / "run"
    cmd = _interrupt_cmd(out, every)
    proc = paused_child(cmd[3:], f"after_step:{at}", tmp_path, ranks=2)
    proc.send_signal(signal.SIGTERM)  # the launcher only: torchrun's agent forwards it to the ranks
    proc.communicate(timeout=240)
    stderr = (tmp_path / "child.stderr").read_text()
    assert proc.returncode == 143, stderr[-3000:]
    assert "Traceback" not in stderr and not (out / "result.json").exists(), stderr[-3000:]
    stopped = [l for l in stderr.splitlines() if l.startswith("stopped: ")]
    resume = [l for l in stderr.splitlines() if l.startswith("resume with: ")]
    assert len(stopped) == 1 and "SIGTERM" in stopped[0], stderr[-3000:]
    assert len(resume) == 1 and "--nproc 2" in resume[0] and "--resume" in resume[0] and str(out) in resume[0]
    saved = json.loads((out / "checkpoints" / "latest.json").read_text())["step"]
    assert saved == at and f"step {saved}" in stopped[0]

    resumed = subprocess.run([*cmd, "--resume"], capture_output=True, text=True, timeout=300)
    assert resumed.returncode == 0 and "Traceback" not in resumed.stderr, resumed.stderr[-3000:]
    assert_same_training_state(uninterrupted_two_ranks, _final_training_state(out))
