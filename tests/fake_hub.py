"""A stand-in for the Hugging Face Hub's HTTP API on 127.0.0.1, for offline tests.

It serves the endpoints that ``huggingface_hub``'s own code calls to create a repository, upload
a folder in one commit (regular, non-LFS files) and download files or a snapshot, so the tests
run the real library end to end against it (``HF_ENDPOINT`` pointed here) without the network.
Repositories live in memory: ``hub.repos[(repo_type, repo_id)] = {path: bytes}``.
"""

from __future__ import annotations

import base64
import hashlib
import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import unquote, urlparse


class FakeHub:
    def __init__(self) -> None:
        self.repos: dict[tuple[str, str], dict[str, bytes]] = {}
        self.requests: list[tuple[str, str]] = []
        hub = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:  # keep test output clean
                pass

            def do_GET(self) -> None:
                hub._handle(self, "GET")

            def do_HEAD(self) -> None:
                hub._handle(self, "HEAD")

            def do_POST(self) -> None:
                hub._handle(self, "POST")

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}"

    def __enter__(self) -> "FakeHub":
        self.thread.start()
        return self

    def __exit__(self, *exc: Any) -> None:
        self.server.shutdown()
        self.server.server_close()

    # -- state --------------------------------------------------------------------------------
    def add(self, repo_type: str, repo_id: str, files: dict[str, bytes]) -> None:
        self.repos.setdefault((repo_type, repo_id), {}).update(files)

    def sha(self, key: tuple[str, str]) -> str:
        files = self.repos.get(key, {})
        h = hashlib.sha1()
        for path in sorted(files):
            h.update(path.encode() + b"\0" + files[path])
        return h.hexdigest()

    # -- HTTP ---------------------------------------------------------------------------------
    def _reply(self, req: BaseHTTPRequestHandler, method: str, status: int, body: bytes = b"",
               headers: dict[str, str] | None = None, content_type: str = "application/json") -> None:
        req.send_response(status)
        req.send_header("Content-Type", content_type)
        req.send_header("Content-Length", str(len(body)))
        for k, v in (headers or {}).items():
            req.send_header(k, v)
        req.end_headers()
        if method != "HEAD":
            req.wfile.write(body)

    def _json(self, req: BaseHTTPRequestHandler, method: str, data: Any, status: int = 200) -> None:
        self._reply(req, method, status, json.dumps(data).encode())

    def _not_found(self, req: BaseHTTPRequestHandler, method: str, what: str) -> None:
        self._reply(req, method, 404, json.dumps({"error": what}).encode(),
                    headers={"X-Error-Code": "RepoNotFound", "X-Error-Message": what})

    def _handle(self, req: BaseHTTPRequestHandler, method: str) -> None:
        path = unquote(urlparse(req.path).path)
        self.requests.append((method, path))
        length = int(req.headers.get("Content-Length") or 0)
        body = req.rfile.read(length) if length else b""
        parts = [p for p in path.split("/") if p]
        if method == "POST" and path == "/api/repos/create":
            data = json.loads(body or b"{}")
            repo_type = data.get("type") or "model"
            repo_id = f"{data['organization']}/{data['name']}" if data.get("organization") else data["name"]
            self.repos.setdefault((repo_type, repo_id), {})
            return self._json(req, method, {"url": f"{self.url}/{repo_id}"})
        if method == "POST" and path == "/api/validate-yaml":  # the model card's front matter
            return self._json(req, method, {"errors": [], "warnings": []})
        if parts[:1] == ["api"] and len(parts) >= 5 and parts[1] in ("models", "datasets"):
            repo_type = parts[1][:-1]
            repo_id = f"{parts[2]}/{parts[3]}"
            key = (repo_type, repo_id)
            action = parts[4]
            if key not in self.repos:
                return self._not_found(req, method, f"{repo_type} {repo_id} not found")
            if action == "preupload":
                files = json.loads(body)["files"]
                return self._json(req, method, {"files": [{"path": f["path"], "uploadMode": "regular",
                                                           "shouldIgnore": False} for f in files]})
            if action == "commit":
                for line in body.decode().splitlines():
                    item = json.loads(line)
                    if item.get("key") == "file":
                        value = item["value"]
                        self.repos[key][value["path"]] = base64.b64decode(value["content"])
                sha = self.sha(key)
                return self._json(req, method, {"commitOid": sha, "commitUrl": f"{self.url}/{repo_id}/commit/{sha}",
                                                "success": True})
            if action == "tree":  # the file listing snapshot_download reads (one page)
                return self._json(req, method, [
                    {"type": "file", "path": p, "size": len(b), "oid": hashlib.sha1(b).hexdigest()}
                    for p, b in sorted(self.repos[key].items())])
            if action == "revision":
                sha = self.sha(key)
                return self._json(req, method, {"id": repo_id, "sha": sha, "private": False,
                                                "siblings": [{"rfilename": p} for p in sorted(self.repos[key])]})
        # /{repo_id}/resolve/{rev}/{file} or /datasets/{repo_id}/resolve/{rev}/{file}
        repo_type = "model"
        if parts[:1] == ["datasets"]:
            repo_type, parts = "dataset", parts[1:]
        if len(parts) >= 5 and parts[2] == "resolve":
            key = (repo_type, f"{parts[0]}/{parts[1]}")
            filename = "/".join(parts[4:])
            files = self.repos.get(key)
            if files is None or filename not in files:
                return self._reply(req, method, 404, b"not found",
                                   headers={"X-Error-Code": "EntryNotFound", "X-Error-Message": "not found"})
            data = files[filename]
            etag = hashlib.sha256(data).hexdigest()
            return self._reply(req, method, 200, data, content_type="application/octet-stream",
                               headers={"X-Repo-Commit": self.sha(key), "ETag": f'"{etag}"'})
        return self._not_found(req, method, f"no such endpoint: {method} {path}")
