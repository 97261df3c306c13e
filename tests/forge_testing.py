"""Helpers shared by the tests (importable because pytest puts tests/ on sys.path)."""

#: Overrides that make any Cognate variant train in about a second.
TINY = [
    "task.name=sudoku4", "task.train_count=64", "task.eval_count=32", "task.blanks=[6, 8]",
    "model.d_model=32", "model.n_layers=1", "model.n_heads=2", "model.n=1", "model.T=2", "model.n_sup=3",
    "trainer.batch_size=16", "trainer.log_every=2", "trainer.eval_every=4", "trainer.eval_samples=16",
    "trainer.eval_batch_size=32", "trainer.warmup_steps=2", "trainer.precision=fp32", "trainer.threads=1",
]
