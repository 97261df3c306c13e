import json

import pytest
import torch

from agent_forge.errors import ConfigError
from agent_forge.plugins.datasets.text import EOS, TextConfig, build_text, stdlib_docstrings


def test_default_corpus_is_offline_stdlib_docstrings():
    docs = stdlib_docstrings(limit=50)
    assert len(docs) == 50 and all(isinstance(d, str) and len(d) > 40 for d in docs)


def test_windows_are_shifted_by_one_and_splits_disjoint(tmp_path):
    paths = []
    for i in range(20):
        p = tmp_path / f"doc{i}.txt"
        p.write_text(f"document number {i} " * 20)
        paths.append(p)
    data = build_text(TextConfig(paths=paths, seq_len=16, eval_fraction=0.3), seed=0)
    assert data.spec.causal and data.spec.kind == "lm"
    assert (data.train.inputs[:, 1:] == data.train.targets[:, :-1]).all()
    assert int(data.train.inputs.max()) <= EOS
    assert data.info["train_documents"] + data.info["eval_documents"] == 20
    assert data.info["eval_documents"] >= 1


def test_jsonl_errors_name_the_line(tmp_path):
    p = tmp_path / "c.jsonl"
    p.write_text(json.dumps({"text": "fine " * 50}) + "\n" + json.dumps({"body": "no text"}) + "\n")
    with pytest.raises(ConfigError, match="line 2 has no string field 'text'"):
        build_text(TextConfig(paths=[p], seq_len=8), seed=0)


def _docs(tmp_path, n=30):
    paths = []
    for i in range(n):
        p = tmp_path / f"doc{i}.txt"
        p.write_text(f"The function number {i} returns the sum of its arguments. " * 8)
        paths.append(p)
    return paths


def test_bpe_tokenizer_round_trips_and_is_reproducible(tmp_path):
    pytest.importorskip("tokenizers")
    cfg = TextConfig(paths=_docs(tmp_path), seq_len=16, tokenizer="bpe", bpe_vocab=300, eval_fraction=0.2)
    data = build_text(cfg, seed=0)
    assert data.spec.vocab_size == 300 and data.spec.info["eos"] == 0
    assert int(data.train.inputs.max()) < 300
    text = data.render(data.train.inputs[0])
    assert "function number" in text or "returns the sum" in text
    # Fewer tokens than bytes: the merges were learned.
    byte_data = build_text(TextConfig(paths=cfg.paths, seq_len=16, eval_fraction=0.2), seed=0)
    assert len(data.train) < len(byte_data.train)
    # Same documents and size: the same tokenizer, even with the cache cleared.
    import shutil

    from agent_forge.plugins.datasets.grids import cache_dir
    shutil.rmtree(cache_dir() / "bpe")
    again = build_text(cfg, seed=0)
    assert again.spec.info["bpe_sha"] == data.spec.info["bpe_sha"]
    assert (again.train.inputs == data.train.inputs).all()


def test_vocab_size_below_the_tokenizer_is_refused():
    with pytest.raises(ValueError, match="vocab_size 300 is smaller than the bpe tokenizer's 4096"):
        TextConfig(tokenizer="bpe", vocab_size=300)


def test_text_run_writes_generated_samples(tmp_path, host, tiny):
    import json as json_

    from agent_forge import run_phase

    overrides = [o for o in tiny if not o.startswith("task.")] + [
        "task.name=text", f"task.paths=[{', '.join(str(p) for p in _docs(tmp_path))}]", "task.seq_len=32",
        "model.causal=true", "evaluators=[loss, samples]", "callbacks={}"]
    result = run_phase("cognate", host=host, variant="trm_tiny", overrides=overrides, max_steps=2,
                       progress=False, out=tmp_path / "r")
    metrics = result.artifacts[0].artifact.metrics
    assert 0.0 <= metrics["sample_match_rate"] <= 1.0 and 0.0 < metrics["sample_distinct_2"] <= 1.0
    samples = json_.loads((tmp_path / "r" / "samples.json").read_text())
    first = next(iter(samples.values()))["samples"][0]
    assert set(first) == {"prompt", "completion", "reference"} and first["prompt"]


def test_a_folder_is_every_corpus_file_under_it_and_bits_per_byte_counts_bytes(tmp_path):
    (tmp_path / "sub").mkdir()
    for i in range(6):
        (tmp_path / ("sub" if i % 2 else ".") / f"d{i}.txt").write_text(f"text {i} " * 30)
    (tmp_path / "c.jsonl").write_text("".join(json.dumps({"text": f"line {i} " * 30}) + "\n" for i in range(6)))
    (tmp_path / "notes.csv").write_text("ignored")
    data = build_text(TextConfig(paths=[tmp_path], seq_len=16, eval_fraction=0.3), seed=0)
    assert data.info["documents"] == 12  # 6 .txt (nested too) + 6 JSONL lines; the .csv is not a corpus file
    # The byte tokenizer: one byte per token, none for end-of-document.
    assert data.token_bytes[:256].tolist() == [1] * 256 and int(data.token_bytes[EOS]) == 0


def test_an_empty_folder_and_parquet_without_pyarrow_are_named(tmp_path):
    (tmp_path / "empty").mkdir()
    with pytest.raises(ConfigError, match="holds no"):
        build_text(TextConfig(paths=[tmp_path / "empty"], seq_len=16), seed=0)
    try:
        import pyarrow  # noqa: F401
    except ImportError:
        (tmp_path / "c.parquet").write_bytes(b"PAR1")
        with pytest.raises(ConfigError, match="needs pyarrow"):
            build_text(TextConfig(paths=[tmp_path / "c.parquet"], seq_len=16), seed=0)


def test_a_parquet_corpus_is_one_document_per_row_of_its_text_column(tmp_path):
    # pyarrow is a test dependency (the 'dev' extra), so this runs wherever scripts/setup.sh installed.
    pa = pytest.importorskip("pyarrow")
    import pyarrow.parquet as pq

    rows = [f"parquet row {i} says something of its own. " * 6 for i in range(10)]
    (tmp_path / "corpus").mkdir()
    pq.write_table(pa.table({"id": list(range(12)), "text": rows + [None, "short but kept"]}),
                   tmp_path / "corpus" / "c.parquet")
    data = build_text(TextConfig(paths=[tmp_path / "corpus" / "c.parquet"], seq_len=16, eval_fraction=0.3), seed=0)
    assert data.info["documents"] == 11  # ten rows and the short one; the null row is skipped
    assert data.render(data.train.inputs[0]).startswith("parquet row ")
    # The same rows as a .jsonl corpus give the same windows: Parquet is only another container.
    (tmp_path / "c.jsonl").write_text("".join(json.dumps({"text": r}) + "\n" for r in rows + ["short but kept"]))
    as_jsonl = build_text(TextConfig(paths=[tmp_path / "c.jsonl"], seq_len=16, eval_fraction=0.3), seed=0)
    assert torch.equal(data.train.inputs, as_jsonl.train.inputs)
    assert torch.equal(data.eval.targets, as_jsonl.eval.targets)
    # A folder reads a .parquet file beside the other corpus files.
    (tmp_path / "corpus" / "extra.txt").write_text("a plain text document beside the parquet file " * 4)
    both = build_text(TextConfig(paths=[tmp_path / "corpus"], seq_len=16, eval_fraction=0.3), seed=0)
    assert both.info["documents"] == 12
    # A file without a 'text' column is refused, naming the columns it has.
    pq.write_table(pa.table({"body": rows}), tmp_path / "bad.parquet")
    with pytest.raises(ConfigError, match=r"no column 'text' \(columns: body\)"):
        build_text(TextConfig(paths=[tmp_path / "bad.parquet"], seq_len=16), seed=0)
