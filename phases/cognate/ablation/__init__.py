"""``forge ablate``: every arm trained on the same task, data, optimizer and wall-clock budget.

Fairness rules, enforced here rather than trusted to the variants:

* one task section for every arm (``--task`` or the first arm's), and one ``data_seed``, so every
  arm trains and is evaluated on the same generated puzzles;
* one optimizer setting (lr, batch, weight decay, warm-up) for every arm, taken from the first
  arm's trainer section; only the architecture and its callbacks differ;
* the same ``--minutes`` budget per run, with no step limit, so faster arms get more steps; or
  the same wall-clock as step counts (``--equal-time SECONDS``: each arm's seconds per step
  measured before the runs, interleaved in one process, :mod:`.calibrate`), so the runs do not
  depend on the load while they train; or ``--max-steps`` / ``--arm-steps``;
* seeds 0..K-1 for every arm; results are mean ± std over seeds (with one seed the spread is
  "n/a (1 seed)", not 0).

``ablation.md`` shows the settings the runs actually used, read back from every run's resolved
``config.json`` (so ``--set`` values, not the preset's): the ones every arm shared, and per arm
the ones that differ. Numbers go through :func:`agent_forge.formatting.format_number`; a value
that was not measured is "n/a", never ``nan``.

Nothing here is expected to win: ``ablation.md`` says which arm scored highest, by how much, and
whether the gap is larger than the seed-to-seed spread.

**Arms.** An arm is a registered variant plus overrides of its own (:class:`.arms.Arm`), given as a
variant name (``--variants a,b``), as ``--arm NAME=VARIANT:key=value,key=value`` (:func:`.arms.parse_arm`),
or by a named arm set (``--arms ema,recursion --base trm_paper``, :data:`.catalogue.ARM_SETS`) that expands
against the base variant's config. Arms whose resolved configs are identical run once, under the
first name (``same_as`` in ``ablation.json`` lists the others).

Rooms: :mod:`.arms` (an arm and its ``--arm`` spelling), :mod:`.catalogue` (the named arm sets of
``--arms``), :mod:`.runner` (the shared settings, folding identical arms, running every arm and
seed and writing the results), :mod:`.jobs` (``--jobs N``: the runs as concurrent processes),
:mod:`.calibrate` (``--equal-time``: the step budgets from the arms' timed steps),
:mod:`.stats` (mean ± std over seeds, the settings the runs shared, the verdict),
:mod:`.markdown` (``ablation.md``) and :mod:`.plots` (``ablation.png``).
"""
