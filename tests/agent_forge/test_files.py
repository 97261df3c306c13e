"""agent_forge/files.py: safetensors files written without copying the state they hold."""

import hashlib
import os
import stat
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from agent_forge.checkpoint import load_train_state, save_train_state
from agent_forge.files import save_weights, writable_tensors


def test_contiguous_tensors_are_handed_over_and_views_tied_and_strided_ones_copied():
    base = torch.randn(6, 4)
    state = {"whole": base, "tied": base, "slice": base[2:4], "strided": base.t(), "other": torch.zeros(3)}
    out = writable_tensors(state)
    assert out["whole"].data_ptr() == base.data_ptr()  # no copy of the ordinary case
    assert out["other"].data_ptr() == state["other"].data_ptr()
    for key in ("tied", "slice", "strided"):
        assert out[key].untyped_storage().data_ptr() != base.untyped_storage().data_ptr(), key
        assert out[key].is_contiguous() and torch.equal(out[key], state[key]), key


def test_saved_file_round_trips_and_its_digest_is_the_files(tmp_path):
    base = torch.randn(5, 3)
    state = {"a": base, "b": base, "c": base[1:], "d": base.t(), "i": torch.arange(4), "e": torch.zeros(0),
             "h": torch.ones(2, dtype=torch.bfloat16)}
    sha, size = save_weights(tmp_path / "w.safetensors", state)
    path = tmp_path / "w.safetensors"
    assert sha == hashlib.sha256(path.read_bytes()).hexdigest() and size == path.stat().st_size
    loaded = load_file(str(path))
    assert set(loaded) == set(state)
    assert all(torch.equal(loaded[k], state[k]) and loaded[k].dtype == state[k].dtype for k in state)
    assert [p.name for p in tmp_path.iterdir()] == ["w.safetensors"]  # no temporary file left


def test_a_failed_write_leaves_the_old_file_and_no_temporary_one(tmp_path, monkeypatch):
    path = tmp_path / "w.safetensors"
    save_weights(path, {"a": torch.ones(3)})
    old = path.read_bytes()

    def broken(tensors, filename, metadata=None):
        Path(filename).write_bytes(b"half")
        raise OSError("disk full")

    monkeypatch.setattr("agent_forge.files.save_file", broken)
    with pytest.raises(OSError, match="disk full"):
        save_weights(path, {"a": torch.zeros(3)})
    assert path.read_bytes() == old
    assert [p.name for p in tmp_path.iterdir()] == ["w.safetensors"]


def test_train_state_keeps_optimizer_entries_that_share_storage(tmp_path):
    w = torch.randn(4, 4)
    state = {"model": {"w": w, "w_view": w[:2]}, "optimizer": {0: {"exp_avg": w.clone()}}, "step": 3}
    save_train_state(tmp_path / "ck", state)
    back = load_train_state(tmp_path / "ck")
    assert torch.equal(back["model"]["w"], w) and torch.equal(back["model"]["w_view"], w[:2])
    assert torch.equal(back["optimizer"][0]["exp_avg"], w) and back["step"] == 3


@pytest.mark.skipif(not Path("/proc/self/clear_refs").exists(), reason="needs Linux's peak-RSS reset")
def test_saving_a_training_state_does_not_copy_it_in_memory(tmp_path):
    # A 318M-parameter LM's end-of-training checkpoint (5 GB of weights, EMA and Adam moments) was
    # killed for memory: the state was copied up to four times on its way to the file. The peak
    # RSS of the save alone (the kernel's high-water mark, reset just before it) must stay well
    # under the size of the state; the old path's peak was 3-4 times it.
    script = textwrap.dedent(f"""
        import re, torch
        from pathlib import Path
        from agent_forge.checkpoint import save_train_state
        state = {{"model": {{f"w{{i}}": torch.randn(1024, 1024) for i in range(32)}},
                 "optimizer": {{0: {{"exp_avg": torch.randn(1024, 4096), "exp_avg_sq": torch.rand(1024, 4096)}}}}}}
        size = sum(t.numel() * 4 for part in state.values() for d in part.values()
                   for t in (d.values() if isinstance(d, dict) else [d]))
        def kb(key):
            return int(re.search(key + r":\\s+(\\d+)", Path("/proc/self/status").read_text()).group(1))
        Path("/proc/self/clear_refs").write_text("5")
        before = kb("VmRSS")
        save_train_state(Path({str(tmp_path)!r}) / "ck", state)
        print((kb("VmHWM") - before) * 1024 / size)
    """)
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr
    assert float(out.stdout) < 0.25, f"the save's peak grew by {float(out.stdout):.2f}x the state"


@pytest.mark.parametrize("umask, mode", [(0o022, 0o644), (0o077, 0o600)])
def test_a_weights_file_gets_the_mode_the_umask_gives_a_new_file(tmp_path, umask, mode):
    # safetensors' writer makes its file 0600 whatever the umask; an export meant for sharing
    # must be readable by others as any new file is.
    previous = os.umask(umask)
    try:
        save_weights(tmp_path / "w.safetensors", {"a": torch.ones(2)})
    finally:
        os.umask(previous)
    assert stat.S_IMODE((tmp_path / "w.safetensors").stat().st_mode) == mode


def test_a_slice_alone_on_its_storage_is_written_without_a_copy(tmp_path):
    base = torch.arange(10.0)
    state = {"part": base[2:5]}
    assert writable_tensors(state)["part"].data_ptr() == state["part"].data_ptr()
    save_weights(tmp_path / "w.safetensors", state)
    assert torch.equal(load_file(str(tmp_path / "w.safetensors"))["part"], base[2:5])
