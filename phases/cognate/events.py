"""The training events. Each value is the name of the :class:`~agent_forge.phases.cognate.Callback`
method that handles it; every handler receives ``(trainer, state)``.

The loop, as :class:`agent_forge.phases.cognate.trainer.DeepSupervisionTrainer` runs it::

    on_fit_start(trainer, state)             # restore or initialise callback state
    while not state.should_stop:
        refill halted rows of the batch with fresh examples; reset their carry
        on_step_start(trainer, state)        # e.g. memory read prep, exploration draws
        carry, output = model(carry, batch)  # one supervision step (T-1 no-grad cycles + 1)
        task = compute_task_loss(state, cfg) # the task loss and the step's correctness
        state.losses = {"lm": task.lm, **output.aux_losses}
        on_loss(trainer, state)              # algorithms add terms: ACT's halting BCE, ponder cost
        backward(sum(state.losses)); clip grad norm; NaN guard
        on_after_backward(trainer, state)
        optimizer.step(); scheduler.step()
        on_step_end(trainer, state)          # EMA update, memory write
        state.sup_steps += 1; state.halted = sup_steps >= state.max_sup_steps
        on_halt(trainer, state)              # ACT may halt rows earlier (q_halt > 0)
        every log_every steps:   on_log(trainer, state)         # metrics written to metrics.jsonl
        every eval_every steps:  evaluate; on_eval(trainer, state)  # early stop watches state.eval_metrics (validation)
        every checkpoint_every:  on_save_checkpoint(trainer, state) (then the trainer saves everything)
    on_fit_end(trainer, state)

Callbacks stop training by setting ``state.should_stop = True`` and ``state.stop_reason``;
nothing raises to stop. What else a callback may assign is the list
:data:`agent_forge.phases.cognate.state.CALLBACK_WRITABLE`; the state refuses the rest.

In a multi-process run (docs/distributed.md) ``state.batch``, ``state.sup_steps``,
``state.fresh``, ``state.halted`` and ``state.min_halt_steps`` always cover the *global* batch
(identical on every rank), while ``state.carry`` and, during ``on_loss``/``on_after_backward``/
``on_step_end``, ``state.output``, ``state.seq_correct`` and ``state.per_sample_loss`` hold only
this rank's rows (``state.rows``). From ``on_halt`` on, they are gathered to the
global batch. In a single process the two views are the same.
"""

from enum import Enum


class Event(str, Enum):
    FIT_START = "on_fit_start"
    STEP_START = "on_step_start"
    LOSS = "on_loss"
    AFTER_BACKWARD = "on_after_backward"
    STEP_END = "on_step_end"
    HALT = "on_halt"
    LOG = "on_log"
    EVAL = "on_eval"
    SAVE_CHECKPOINT = "on_save_checkpoint"
    FIT_END = "on_fit_end"
