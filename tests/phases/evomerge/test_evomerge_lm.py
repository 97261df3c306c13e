"""EvoMerge on a language model: ``cognate,evomerge`` with an lm_* preset at test size, fitness =
held-out bits per byte (lower is fitter)."""

from agent_forge import Pipeline
from agent_forge.phases.evomerge.config import EvoMergeConfig, fitness_for_task

# lm_conservative at test size: byte tokens, one narrow layer, short windows.
LM_TINY = ("model.d_model=32", "model.n_layers=1", "model.n_heads=2", "model.n_kv_heads=1", "model.head_dim=null",
           "model.n=1", "model.n_sup=2", "model.n_sup_inference=2", "task.seq_len=32", "task.vocab_size=257",
           "task.max_documents=300", "task.max_sequences=200", "trainer.batch_size=4", "trainer.eval_batch_size=8",
           "trainer.eval_samples=4", "trainer.eval_every=null", "trainer.warmup_steps=1", "trainer.precision=fp32",
           "trainer.threads=1", "evaluators=[loss]")


def test_lm_fitness_is_bits_per_byte_unless_the_config_names_one():
    assert fitness_for_task(EvoMergeConfig(), "lm").metric == "bits_per_byte"
    assert fitness_for_task(EvoMergeConfig(), "lm").mode == "min"
    assert fitness_for_task(EvoMergeConfig(), "puzzle").metric == "exact_accuracy"
    assert fitness_for_task(EvoMergeConfig(metric="eval_loss", mode="min"), "lm").metric == "eval_loss"


def test_pipeline_cognate_evomerge_on_a_tiny_lm(tmp_path, host):
    results = Pipeline(["cognate", "evomerge"], host=host).run(
        per_phase={"cognate": {"overrides": LM_TINY},
                   "evomerge": {"overrides": ("selection_samples=4", "heldout_samples=4", "generations=1",
                                              "population=3", "elite=1")}},
        variant="lm_conservative", max_steps=2, models=2, progress=False, out=tmp_path / "p")
    cognate, merge = results
    assert merge.status == "completed"
    bpb = merge.metrics["heldout/bits_per_byte"]
    assert merge.metrics["bits_per_byte"] == bpb and 0 < bpb < 20
    # Elitism, lower is fitter: the best is at least as good as every input on the selection split.
    best = merge.details["best"]["selection"]["bits_per_byte"]
    assert all(best <= row["selection"]["bits_per_byte"] for row in merge.details["inputs"])
