import json

import pytest

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
