"""The hooks only the Cognate phase calls, and the specs they register.

The Cognate phase hands this module to the host with its
:class:`~agent_forge.specs.PhaseSpec` (``hookspecs=``); the host adds it to the plugin manager
(pluggy's ``add_hookspecs``) before it checks the plugins, so a plugin implements these exactly
like the core's hooks (:mod:`agent_forge.hookspecs`)::

    from agent_forge import hookimpl
    from agent_forge.phases.cognate import CallbackSpec

    @hookimpl
    def forge_register_callbacks(register):
        register(CallbackSpec("loss_spike", LossSpike))
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Callable, ClassVar, Mapping

from pydantic import BaseModel

from agent_forge.hookspecs import hookspec
from agent_forge.specs import Spec, SpecError

if TYPE_CHECKING:  # pragma: no cover - annotations only
    from agent_forge.phases.cognate.callback import Callback
    from agent_forge.phases.cognate.fit import Trainer


@dataclass(frozen=True)
class TrainerSpec(Spec):
    """A trainer: ``build(config) -> Trainer`` (:class:`agent_forge.phases.cognate.fit.Trainer`:
    ``fit(FitContext) -> FitResult`` and the weights it offers); ``config`` is the ``trainer``
    section."""

    kind: ClassVar[str] = "trainer"
    build: Callable[[Any], Trainer]
    config: type[BaseModel]

    def __post_init__(self) -> None:
        super().__post_init__()
        self._callable("build")
        self._config()


@dataclass(frozen=True)
class CallbackSpec(Spec):
    """A training callback: ``build(config) -> Callback`` (a subclass of
    :class:`agent_forge.phases.cognate.Callback`; the trainer refuses anything else). ``config``
    is the model of its ``callbacks.<name>`` section, or None for a callback without settings."""

    kind: ClassVar[str] = "callback"
    build: Callable[[Any], Callback]
    config: type[BaseModel] | None = None

    def __post_init__(self) -> None:
        super().__post_init__()
        self._callable("build")
        self._config(optional=True)


@dataclass(frozen=True)
class VariantSpec(Spec):
    """A variant: a named, complete Cognate config as plain data, with the sections ``model``,
    ``task``, ``trainer``, ``callbacks`` (and optionally ``evaluators``), exactly as ``--config
    FILE`` would hold them. It is validated when used (``forge variants`` shows a broken one)."""

    kind: ClassVar[str] = "variant"
    config: Mapping[str, Any]

    def __post_init__(self) -> None:
        super().__post_init__()
        if not isinstance(self.config, Mapping):
            raise SpecError(f"{self._where('config')} must be a mapping of config sections (model, task, trainer,"
                            f" callbacks), got {type(self.config).__name__}")


@hookspec
def forge_register_trainers(register: Callable[[TrainerSpec], None]) -> None:
    """Register trainers.

    Call ``register(TrainerSpec(name, build, config=ConfigModel, description=""))``.
    ``build(config)`` returns a :class:`agent_forge.phases.cognate.fit.Trainer`: an object with
    ``fit(ctx: FitContext) -> FitResult`` (see :mod:`agent_forge.phases.cognate.trainer`).
    """


@hookspec
def forge_register_callbacks(register: Callable[[CallbackSpec], None]) -> None:
    """Register training callbacks (EMA, early stop, ACT, memory, ...).

    Call ``register(CallbackSpec(name, build, config=ConfigModel | None, description=""))``.
    ``build(config)`` returns a subclass of :class:`agent_forge.phases.cognate.Callback`, whose
    methods are the events of :mod:`agent_forge.phases.cognate.events`; each receives
    ``(trainer, state)``. Override ``state_dict()`` / ``load_state_dict(state)`` so that
    ``--resume`` restores it (``state_dict()`` runs on every rank of a multi-process run; rank
    0's is written), and ``eval_weights(state)`` to have other weights evaluated beside
    the raw ones (docs/plugins.md).
    """


@hookspec
def forge_register_variants(register: Callable[[VariantSpec], None]) -> None:
    """Register variants: named, complete Cognate configs.

    Call ``register(VariantSpec(name, config, description=""))`` where ``config`` is a plain dict
    with the sections ``model``, ``task``, ``trainer``, ``callbacks`` (and optionally
    ``evaluators``), exactly as ``--config FILE`` would hold them. It is validated when used.
    """


#: This phase's registration hooks, in the order the host calls them, with the spec each takes.
REGISTRATION_HOOKS: dict[str, type[Spec]] = {
    "forge_register_trainers": TrainerSpec,
    "forge_register_callbacks": CallbackSpec,
    "forge_register_variants": VariantSpec,
}
