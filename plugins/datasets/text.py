"""``text``: causal language modelling over local text, with an offline default corpus.

* **Corpus.** ``paths`` lists ``.txt``/``.md`` files (one document each), ``.jsonl`` files (one
  document per line, from the ``text`` field), ``.parquet`` files (one document per row of the
  ``text`` column; needs ``pyarrow``, the optional extra ``parquet``) and folders (every such file
  under it, in sorted order). With no paths, the corpus is the docstrings of the Python
  standard library installed with the interpreter that runs agent-forge, read at run time with
  ``ast``: present on every machine, English prose about code, a few MB, and no download.
* **Tokenizer.** ``byte`` (default): token = byte value (0–255), 256 = end of document.
  ``bpe``: a byte-level BPE of ``bpe_vocab`` tokens trained with the ``tokenizers`` package (the
  optional extra ``bpe``) on the *training* documents only, token 0 = end of document. Training
  is deterministic (same documents and size give the same tokenizer, which a later phase relies
  on to rebuild it from the artifact's dataset config) and cached as JSON under
  ``$FORGE_CACHE_DIR/bpe``. ``vocab_size`` (embedding rows) defaults to what the tokenizer
  needs; it may be larger (the LM presets use GPT-2's padded 50304 so their parameter counts
  compare with the literature), and the extra rows are never produced.
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
from typing import Callable, Literal

import torch
from pydantic import Field, model_validator

from agent_forge import hookimpl
from agent_forge.config import StrictModel
from agent_forge.contracts import TaskSpec
from agent_forge.data import Split, TaskData
from agent_forge.errors import ConfigError
from agent_forge.plugins.datasets.grids import cache_dir
from agent_forge.specs import DatasetSpec

EOS = 256
CORPUS_SUFFIXES = (".txt", ".md", ".jsonl", ".parquet")
BPE_EOS = "<|endoftext|>"


class TextConfig(StrictModel):
    name: str = "text"
    paths: list[Path] = Field(default_factory=list, description="Text/Markdown/JSONL/Parquet files or folders of them;"
                                                                " empty = stdlib docstrings.")
    seq_len: int = Field(256, ge=8)
    tokenizer: Literal["byte", "bpe"] = Field("byte", description="'byte' or a trained 'bpe' (extra 'bpe').")
    bpe_vocab: int = Field(4096, ge=260, le=200_000, description="Tokens the BPE learns (tokenizer=bpe).")
    vocab_size: int | None = Field(None, ge=257, description="Embedding rows (default: the tokenizer's size).")
    eval_fraction: float = Field(0.05, gt=0, lt=1)
    max_documents: int | None = Field(None, ge=2)
    max_sequences: int | None = Field(20000, ge=2, description="Cap on training windows (memory).")

    @model_validator(mode="after")
    def _check(self) -> "TextConfig":
        for p in self.paths:
            if p.suffix not in CORPUS_SUFFIXES and not p.is_dir():
                raise ValueError(f"paths: {p} is not a folder or a .txt, .md, .jsonl or .parquet file")
        if self.vocab_size is not None and self.vocab_size < self.tokenizer_size:
            raise ValueError(f"vocab_size {self.vocab_size} is smaller than the {self.tokenizer} tokenizer's"
                             f" {self.tokenizer_size} tokens; raise vocab_size or lower bpe_vocab")
        return self

    @property
    def tokenizer_size(self) -> int:
        return self.bpe_vocab if self.tokenizer == "bpe" else EOS + 1

    def task_spec(self) -> TaskSpec:
        return TaskSpec(name=self.name, kind="lm", vocab_size=self.vocab_size or self.tokenizer_size,
                        seq_len=self.seq_len, causal=True,
                        info={"tokenizer": self.tokenizer, "eos": 0 if self.tokenizer == "bpe" else EOS})


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


def corpus_files(paths: list[Path]) -> list[Path]:
    """``paths`` with each folder replaced by the corpus files under it (sorted, so the order and
    hence the train/eval split do not depend on the file system)."""
    files: list[Path] = []
    for path in paths:
        if not path.exists():
            raise ConfigError(f"task.paths: {path} does not exist")
        if path.is_dir():
            found = sorted(p for p in path.rglob("*") if p.is_file() and p.suffix in CORPUS_SUFFIXES)
            if not found:
                raise ConfigError(f"task.paths: the folder {path} holds no {', '.join(CORPUS_SUFFIXES)} file")
            files += found
        else:
            files.append(path)
    return files


def read_parquet(path: Path) -> list[str]:
    """The ``text`` column of a Parquet file, one document per row (nulls skipped)."""
    try:
        import pyarrow.parquet as pq
    except ImportError:
        raise ConfigError(f"task.paths: {path} is Parquet, which needs pyarrow: pip install 'agent-forge[parquet]'"
                          " (or convert it to .jsonl)") from None
    table = pq.read_table(path)
    if "text" not in table.column_names:
        raise ConfigError(f"{path}: no column 'text' (columns: {', '.join(table.column_names)})")
    return [t for t in table.column("text").to_pylist() if isinstance(t, str)]


def read_documents(paths: list[Path]) -> list[str]:
    docs: list[str] = []
    for path in corpus_files(paths):
        if path.suffix == ".parquet":
            docs += read_parquet(path)
        elif path.suffix == ".jsonl":
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


class ByteTokenizer:
    eos = EOS

    def encode(self, text: str) -> list[int]:
        return list(text.encode("utf-8"))

    def decode(self, ids: list[int]) -> str:
        return bytes(i for i in ids if i < 256).decode("utf-8", errors="replace")


def byte_tokenizer_bytes(vocab_size: int) -> torch.Tensor:
    """Bytes per token of the byte tokenizer: 1 for 0-255, 0 for end-of-document and unused rows."""
    out = torch.zeros(vocab_size, dtype=torch.long)
    out[:256] = 1
    return out


class BPETokenizer:
    """A byte-level BPE from the ``tokenizers`` package, trained on the given documents."""

    eos = 0

    def __init__(self, docs: list[str], vocab: int) -> None:
        try:
            from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
        except ImportError:
            raise ConfigError("task.tokenizer=bpe needs the optional package tokenizers:"
                              " pip install 'agent-forge[bpe]'") from None
        digest = hashlib.sha256(f"{vocab}\0".encode() + "\0".join(docs).encode()).hexdigest()[:24]
        path = cache_dir() / "bpe" / f"{digest}.json"
        if path.exists():
            self.tok = Tokenizer.from_str(path.read_text())
        else:
            tok = Tokenizer(models.BPE())
            tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
            tok.decoder = decoders.ByteLevel()
            trainer = trainers.BpeTrainer(vocab_size=vocab, special_tokens=[BPE_EOS], show_progress=False,
                                          initial_alphabet=pre_tokenizers.ByteLevel.alphabet())
            tok.train_from_iterator(docs, trainer)
            from agent_forge.files import atomic_write_bytes

            atomic_write_bytes(path, tok.to_str().encode())
            self.tok = tok
        assert self.tok.token_to_id(BPE_EOS) == self.eos
        self.digest = digest

    def encode(self, text: str) -> list[int]:
        return self.tok.encode(text).ids

    def decode(self, ids: list[int]) -> str:
        return self.tok.decode([i for i in ids if i != self.eos and i < self.tok.get_vocab_size()])

    def token_bytes(self, vocab_size: int) -> torch.Tensor:
        """Bytes per token id: a byte-level BPE token writes each byte as one character of its
        alphabet, so its string's length is its byte count; the special token is 0 bytes."""
        out = torch.zeros(vocab_size, dtype=torch.long)
        for token, i in self.tok.get_vocab().items():
            if i != self.eos and i < vocab_size:
                out[i] = len(token)
        return out


def _windows(docs: list[str], seq_len: int, cap: int | None, encode: Callable[[str], list[int]], eos: int) -> Split:
    stream: list[int] = []
    for doc in docs:
        stream.extend(encode(doc))
        stream.append(eos)
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
    # The tokenizer learns from the training documents only, so eval text stays unseen.
    tokenizer = BPETokenizer(train_docs, cfg.bpe_vocab) if cfg.tokenizer == "bpe" else ByteTokenizer()
    spec = cfg.task_spec()
    if isinstance(tokenizer, BPETokenizer):
        spec = spec.model_copy(update={"info": {**spec.info, "bpe_sha": tokenizer.digest}})
    return TaskData(spec=spec,
                    train=_windows(train_docs, cfg.seq_len, cfg.max_sequences, tokenizer.encode, tokenizer.eos),
                    eval=_windows(eval_docs, cfg.seq_len, cfg.max_sequences, tokenizer.encode, tokenizer.eos),
                    render=lambda t: tokenizer.decode([int(v) for v in t.tolist()]),
                    token_bytes=(tokenizer.token_bytes(spec.vocab_size) if isinstance(tokenizer, BPETokenizer)
                                 else byte_tokenizer_bytes(spec.vocab_size)),
                    info={"documents": len(docs), "train_documents": len(train_docs), "eval_documents": len(eval_docs),
                          "tokenizer": cfg.tokenizer})


def tokenizer_for(cfg: TextConfig, seed: int, bpe_sha: str | None = None) -> ByteTokenizer | BPETokenizer:
    """The tokenizer a model trained on ``cfg`` (with data seed ``seed``) reads and writes: the byte
    tokenizer, or the BPE from the cache by its digest (``task.info["bpe_sha"]``), retrained from
    the same training documents when the cache lacks it (deterministic, so it is the same one)."""
    if cfg.tokenizer == "byte":
        return ByteTokenizer()
    if bpe_sha is not None and (cache_dir() / "bpe" / f"{bpe_sha}.json").exists():
        from tokenizers import Tokenizer

        tok = BPETokenizer.__new__(BPETokenizer)
        tok.tok = Tokenizer.from_str((cache_dir() / "bpe" / f"{bpe_sha}.json").read_text())
        tok.digest = bpe_sha
        return tok
    if bpe_sha is None:
        raise ConfigError("the artifact's task records no BPE digest (task.info['bpe_sha']); retrain it with this"
                          " version to generate from it")
    spec = build_text(cfg, seed).spec  # trains and caches the tokenizer of these training documents
    if spec.info.get("bpe_sha") != bpe_sha:
        raise ConfigError(f"the BPE tokenizer {bpe_sha} is not in {cache_dir() / 'bpe'} and the task's documents"
                          " no longer train it (the corpus changed); generate where the model was trained")
    return tokenizer_for(cfg, seed, bpe_sha)


@hookimpl
def forge_register_datasets(register: Callable[[DatasetSpec], None]) -> None:
    register(DatasetSpec("text", build_text, config=TextConfig,
                         description="Causal LM over local text/JSONL; default corpus: Python stdlib docstrings"))
