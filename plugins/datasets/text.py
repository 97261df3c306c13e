"""``text``: causal language modelling over local text, with an offline default corpus.

* **Corpus.** ``paths`` lists ``.txt`` files (one document each) and ``.jsonl`` files (one document
  per line, from the ``text`` field). With no paths, the corpus is the docstrings of the Python
  standard library installed with the interpreter that runs agent-forge, read at run time with
  ``ast``: present on every machine, English prose about code, a few MB, and no download.
* **Tokenizer.** Byte-level: token = byte value (0–255), 256 = end of document. ``vocab_size``
  may be larger (the LM presets use GPT-2's padded 50304 so their parameter counts compare with
  the literature); the extra rows are never produced by this tokenizer. A trained BPE is not
  implemented yet.
* **Splits.** By document (a hash of the document and ``seed``), so no document is in both.
  Each split is concatenated and cut into ``seq_len + 1`` windows: inputs are the first
  ``seq_len`` tokens, targets the next ones.
"""

from __future__ import annotations

import ast
import hashlib
import json
import sysconfig
from pathlib import Path

import torch
from pydantic import Field, model_validator

from agent_forge import hookimpl
from agent_forge.config import StrictModel
from agent_forge.contracts import TaskSpec
from agent_forge.data import Split, TaskData
from agent_forge.errors import ConfigError

EOS = 256


class TextConfig(StrictModel):
    name: str = "text"
    paths: list[Path] = Field(default_factory=list, description="Text/JSONL files; empty = stdlib docstrings.")
    seq_len: int = Field(256, ge=8)
    vocab_size: int = Field(257, ge=257, description="At least 257 (bytes + end of document).")
    eval_fraction: float = Field(0.05, gt=0, lt=1)
    max_documents: int | None = Field(None, ge=2)
    max_sequences: int | None = Field(20000, ge=2, description="Cap on training windows (memory).")

    @model_validator(mode="after")
    def _check(self) -> "TextConfig":
        for p in self.paths:
            if p.suffix not in {".txt", ".jsonl", ".md"}:
                raise ValueError(f"paths: {p} is not a .txt, .md or .jsonl file")
        return self

    def task_spec(self) -> TaskSpec:
        return TaskSpec(name=self.name, kind="lm", vocab_size=self.vocab_size, seq_len=self.seq_len, causal=True,
                        info={"tokenizer": "byte", "eos": EOS})


def stdlib_docstrings(limit: int | None = None) -> list[str]:
    root = Path(sysconfig.get_paths()["stdlib"])
    docs: list[str] = []
    for path in sorted(root.glob("*.py")):
        try:
            tree = ast.parse(path.read_text(encoding="utf-8", errors="replace"))
        except (SyntaxError, ValueError):
            continue
        for node in ast.walk(tree):
            if isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)):
                doc = ast.get_docstring(node)
                if doc and len(doc) > 40:
                    docs.append(doc)
        if limit and len(docs) >= limit:
            break
    return docs[:limit] if limit else docs


def read_documents(paths: list[Path]) -> list[str]:
    docs: list[str] = []
    for path in paths:
        if not path.exists():
            raise ConfigError(f"task.paths: {path} does not exist")
        if path.suffix == ".jsonl":
            for line_no, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
                if not line.strip():
                    continue
                try:
                    record = json.loads(line)
                except json.JSONDecodeError as exc:
                    raise ConfigError(f"{path}: line {line_no} is not JSON: {exc}") from None
                if not isinstance(record, dict) or not isinstance(record.get("text"), str):
                    raise ConfigError(f"{path}: line {line_no} has no string field 'text'")
                docs.append(record["text"])
        else:
            docs.append(path.read_text(encoding="utf-8", errors="replace"))
    return docs


def _windows(docs: list[str], seq_len: int, cap: int | None) -> Split:
    stream: list[int] = []
    for doc in docs:
        stream.extend(doc.encode("utf-8"))
        stream.append(EOS)
        if cap and len(stream) > (cap + 1) * (seq_len + 1):
            break
    n = len(stream) // (seq_len + 1)
    if cap:
        n = min(n, cap)
    if n < 1:
        raise ConfigError(f"the corpus is shorter than one window of {seq_len + 1} tokens; lower task.seq_len")
    data = torch.tensor(stream[: n * (seq_len + 1)], dtype=torch.long).view(n, seq_len + 1)
    return Split(data[:, :-1].contiguous(), data[:, 1:].contiguous())


def build_text(cfg: TextConfig, seed: int) -> TaskData:
    docs = read_documents(cfg.paths) if cfg.paths else stdlib_docstrings(cfg.max_documents)
    if cfg.max_documents:
        docs = docs[: cfg.max_documents]
    if len(docs) < 2:
        raise ConfigError("task.paths: need at least two documents to split into train and eval")

    def in_eval(doc: str) -> bool:
        h = hashlib.sha256(f"{seed}:{doc}".encode()).digest()
        return int.from_bytes(h[:4], "big") / 2**32 < cfg.eval_fraction

    train_docs = [d for d in docs if not in_eval(d)]
    eval_docs = [d for d in docs if in_eval(d)] or train_docs[-1:]
    if eval_docs == train_docs[-1:]:
        train_docs = train_docs[:-1]
    return TaskData(spec=cfg.task_spec(), train=_windows(train_docs, cfg.seq_len, cfg.max_sequences),
                    eval=_windows(eval_docs, cfg.seq_len, cfg.max_sequences),
                    render=lambda t: bytes(int(v) for v in t.tolist() if v < 256).decode("utf-8", errors="replace"),
                    info={"documents": len(docs), "train_documents": len(train_docs), "eval_documents": len(eval_docs)})


@hookimpl
def forge_register_datasets(register):
    register("text", build_text, config=TextConfig,
             description="Causal LM over local text/JSONL; default corpus: Python stdlib docstrings")
