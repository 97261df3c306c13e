"""``forge data fetch``, offline: the real ``huggingface_hub`` download path against a stand-in
Hub on 127.0.0.1 (``HF_ENDPOINT`` points at it), then ``forge data build`` on what it fetched."""

import hashlib
import http.server
import json
import os
import subprocess
import sys
import threading

import numpy as np
import pytest

pytest.importorskip("huggingface_hub")

SUDOKU_ROWS = ["0" * 81 + "," + "123456789" * 9, "." * 81 + "," + "987654321" * 9]
FILES = {
    "sapientinc/sudoku-extreme": {
        "train.csv": ("source,question,answer,rating\n" + "".join(f"s{i},{r},0\n" for i, r in enumerate(SUDOKU_ROWS)))
        .encode(),
        "test.csv": ("source,question,answer,rating\n" + f"t,{SUDOKU_ROWS[0]},3\n").encode(),
    },
    # test.csv is missing: the download fails and says which file
    "sapientinc/maze-30x30-hard-1k": {"train.csv": b"source,question,answer,rating\n"},
}
COMMIT = "0123456789abcdef0123456789abcdef01234567"


class StandInHub(http.server.BaseHTTPRequestHandler):
    """The two endpoints hf_hub_download calls: HEAD (metadata) and GET of
    /datasets/<repo>/resolve/<revision>/<file>."""

    requests: list[tuple[str, str]] = []

    def _file(self) -> bytes | None:
        StandInHub.requests.append((self.command, self.path))
        for repo, files in FILES.items():
            prefix = f"/datasets/{repo}/resolve/"
            if self.path.startswith(prefix):
                _revision, _, name = self.path[len(prefix):].partition("/")
                return files.get(name)
        return None

    def _headers(self, body: bytes | None) -> bool:
        if body is None:
            self.send_response(404)
            self.send_header("X-Error-Code", "EntryNotFound")
            self.send_header("X-Error-Message", "Entry not found")
            self.send_header("Content-Length", "0")
            self.end_headers()
            return False
        self.send_response(200)
        self.send_header("X-Repo-Commit", COMMIT)
        self.send_header("ETag", f'"{hashlib.sha256(body).hexdigest()}"')
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        return True

    def do_HEAD(self) -> None:  # noqa: N802 (http.server's names)
        self._headers(self._file())

    def do_GET(self) -> None:  # noqa: N802
        body = self._file()
        if self._headers(body):
            self.wfile.write(body)

    def log_message(self, *args) -> None:
        pass


@pytest.fixture(scope="module")
def hub():
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), StandInHub)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


def _forge(args, tmp_path, endpoint):
    env = {**os.environ, "HF_ENDPOINT": endpoint, "HF_HOME": str(tmp_path / "hf-home"), "FORGE_LOAD_ENTRYPOINTS": "0",
           "HF_HUB_DISABLE_TELEMETRY": "1", "HF_HUB_DISABLE_PROGRESS_BARS": "1"}
    env.pop("HF_HUB_OFFLINE", None)
    env.pop("HF_TOKEN", None)
    return subprocess.run([sys.executable, "-m", "agent_forge", *args], capture_output=True, text=True, env=env,
                          cwd=tmp_path, timeout=120)


def test_fetch_then_build_from_nothing(hub, tmp_path):
    StandInHub.requests.clear()
    proc = _forge(["data", "fetch", "sudoku-extreme"], tmp_path, hub)
    assert proc.returncode == 0, proc.stderr
    result = json.loads(proc.stdout)
    assert result["repo"] == "sapientinc/sudoku-extreme" and result["out"] == "sudoku-extreme"
    for name, body in FILES["sapientinc/sudoku-extreme"].items():
        assert (tmp_path / "sudoku-extreme" / name).read_bytes() == body
        assert result["files"][name]["bytes"] == len(body)
    # the library itself asked the stand-in, for the dataset repo's files at the default revision
    paths = {p for _, p in StandInHub.requests}
    assert "/datasets/sapientinc/sudoku-extreme/resolve/main/train.csv" in paths
    assert {m for m, _ in StandInHub.requests} >= {"HEAD", "GET"}

    # the second command, in this process: the folder the paper's runs train on
    from agent_forge.errors import ConfigError
    from agent_forge.plugins.datasets.official_build import build_folder, fetch

    build_folder("sudoku-extreme", tmp_path / "sudoku-extreme", tmp_path / "data" / "sx", augmentations=0)
    inputs = np.load(tmp_path / "data" / "sx" / "train" / "all__inputs.npy")
    assert inputs.shape == (2, 81) and inputs.tolist() == [[1] * 81, [1] * 81]
    with pytest.raises(ConfigError, match="already has train.csv, test.csv; pass --overwrite"):
        fetch("sudoku-extreme", tmp_path / "sudoku-extreme")


def test_a_file_the_hub_lacks_is_one_error_line(hub, tmp_path):
    proc = _forge(["data", "fetch", "maze-hard", "--out", "mz", "--revision", "v1"], tmp_path, hub)
    assert proc.returncode == 2
    lines = [line for line in proc.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: could not download test.csv of"
                                                   " sapientinc/maze-30x30-hard-1k (revision v1)"), proc.stderr
    assert hub in lines[0] and "Traceback" not in proc.stderr


def test_without_huggingface_hub_the_error_says_what_to_install(tmp_path, monkeypatch):
    from agent_forge.errors import ConfigError
    from agent_forge.plugins.datasets.official_build import fetch

    monkeypatch.setitem(sys.modules, "huggingface_hub", None)  # makes the import fail
    with pytest.raises(ConfigError, match=r"pip install huggingface_hub"):
        fetch("sudoku-extreme", tmp_path / "sx")
    assert not (tmp_path / "sx").exists()
