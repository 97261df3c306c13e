"""What a plugin registers: one frozen spec type per kind of plugin.

A registration hook receives ``register`` and calls it once per item with a spec::

    @hookimpl
    def forge_register_datasets(register):
        register(DatasetSpec("my_task", build_my_task, config=MyTaskConfig, generate=generate_rows))

The type says what a plugin provides (a type checker reads it too); the spec checks its fields
when it is made, inside the host's broken-plugin isolation, so a malformed one names its plugin
and that plugin is skipped. The host hands specs back typed: ``host.get(DatasetSpec, "sudoku4")``.

These are the core's kinds. A phase that adds hooks of its own declares their specs beside
them (Cognate's trainers, callbacks and variants: :mod:`agent_forge.phases.cognate.hookspecs`).
"""

from __future__ import annotations

import dataclasses
import inspect
from dataclasses import dataclass, field
from types import ModuleType
from typing import TYPE_CHECKING, Any, Callable, ClassVar

from pydantic import BaseModel

from agent_forge.errors import ForgeError

if TYPE_CHECKING:  # pragma: no cover - annotations only
    from pathlib import Path

    from torch import nn

    from agent_forge.contracts import TaskSpec
    from agent_forge.data import TaskData
    from agent_forge.loggers import Logger
    from agent_forge.runner import Phase


class SpecError(ForgeError, TypeError):
    """A spec field has the wrong type; the message names the spec, the field and the fix."""


@dataclass(frozen=True)
class Spec:
    """The fields every kind shares. Subclasses add what their kind needs and check it."""

    #: How messages and ``forge plugins`` name the kind ("dataset", "callback", ...).
    kind: ClassVar[str] = ""
    name: str
    description: str = field(default="", kw_only=True)

    def __post_init__(self) -> None:
        if not isinstance(self.name, str) or not self.name:
            raise SpecError(f"{type(self).__name__}: name must be a non-empty string, got {self.name!r}")
        if not isinstance(self.description, str):
            raise SpecError(f"{self._where('description')} must be a string, got {self.description!r}")

    # -- checks the subclasses call ---------------------------------------------------------
    def _where(self, attr: str) -> str:
        return f"{type(self).__name__}({self.name!r}).{attr}"

    def _callable(self, attr: str, *, optional: bool = False) -> None:
        value = getattr(self, attr)
        if value is None and optional:
            return
        if not callable(value):
            raise SpecError(f"{self._where(attr)} must be callable, got {value!r}")

    def _config(self, attr: str = "config", *, optional: bool = False) -> None:
        value = getattr(self, attr)
        if value is None and optional:
            return
        if not (isinstance(value, type) and issubclass(value, BaseModel)):
            none = " or None" if optional else ""
            raise SpecError(f"{self._where(attr)} must be a pydantic model class{none} (subclass"
                            f" agent_forge.config.StrictModel), got {value!r}")

    @classmethod
    def signature(cls) -> str:
        """``DatasetSpec(name, build, config, generate=None, ..., *, description='')``: for messages."""
        def shown(f: dataclasses.Field[Any]) -> str:
            return f.name if f.default is dataclasses.MISSING else f"{f.name}={f.default!r}"

        fields = dataclasses.fields(cls)
        positional = [shown(f) for f in fields if not f.kw_only]
        keyword = [shown(f) for f in fields if f.kw_only]
        return f"{cls.__name__}({', '.join(positional + ['*'] + keyword)})"


@dataclass(frozen=True)
class ArchitectureSpec(Spec):
    """A model architecture: ``build(config, task) -> nn.Module`` following the model protocol
    (:class:`agent_forge.models.protocol.RecursiveModel`); ``config`` is the ``model`` section."""

    kind: ClassVar[str] = "architecture"
    build: Callable[[Any, TaskSpec], nn.Module]
    config: type[BaseModel]

    def __post_init__(self) -> None:
        super().__post_init__()
        self._callable("build")
        self._config()


@dataclass(frozen=True)
class DatasetSpec(Spec):
    """A task: ``build(config, seed) -> TaskData`` (never downloads).

    ``generate(config, count, seed[, progress=]) -> (questions, answers)`` writes example files
    (``forge data generate``); ``file_stats(config, path, *, rows, seed) -> dict`` describes one
    (``forge data stats``). Both are optional.
    """

    kind: ClassVar[str] = "dataset"
    build: Callable[[Any, int], TaskData]
    config: type[BaseModel]
    generate: Callable[..., tuple[list[str], list[str]]] | None = None
    file_stats: Callable[..., dict[str, Any]] | None = None

    def __post_init__(self) -> None:
        super().__post_init__()
        self._callable("build")
        self._config()
        self._callable("generate", optional=True)
        self._callable("file_stats", optional=True)


@dataclass(frozen=True)
class EvaluatorSpec(Spec):
    """An evaluator: ``evaluate(model, task_data, ctx) -> dict[str, float]`` for the split
    ``ctx.split``; ``ctx`` is an :class:`agent_forge.phases.common.evaluation.EvalContext`."""

    kind: ClassVar[str] = "evaluator"
    evaluate: Callable[[nn.Module, TaskData, Any], dict[str, float]]

    def __post_init__(self) -> None:
        super().__post_init__()
        self._callable("evaluate")


@dataclass(frozen=True)
class LoggerSpec(Spec):
    """A metrics logger: ``build(config, run_dir) -> Logger``. ``check_available()`` (optional)
    raises a ``ConfigError`` naming the install command when its package is missing; it runs
    before the run folder is made."""

    kind: ClassVar[str] = "logger"
    build: Callable[[Any, Path], Logger]
    config: type[BaseModel] | None = None
    check_available: Callable[[], None] | None = None

    def __post_init__(self) -> None:
        super().__post_init__()
        self._callable("build")
        self._config(optional=True)
        self._callable("check_available", optional=True)


@dataclass(frozen=True)
class PhaseSpec(Spec):
    """A pipeline phase: ``phase_class(host).run(ctx) -> PhaseResult``.

    ``hookspecs``: modules of hook specs the phase adds (pluggy's ``add_hookspecs``), each
    holding ``@hookspec`` functions and a ``REGISTRATION_HOOKS`` dict ``{hook name: spec type}``
    for those that register things. The host adds them before it checks every plugin's hooks.
    """

    kind: ClassVar[str] = "phase"
    phase_class: type[Phase]
    hookspecs: tuple[ModuleType, ...] = ()

    def __post_init__(self) -> None:
        super().__post_init__()
        if not inspect.isclass(self.phase_class):
            raise SpecError(f"{self._where('phase_class')} must be a class (subclass agent_forge.runner.Phase),"
                            f" got {self.phase_class!r}")
        if not isinstance(self.hookspecs, tuple) or not all(isinstance(m, ModuleType) for m in self.hookspecs):
            raise SpecError(f"{self._where('hookspecs')} must be a tuple of modules, got {self.hookspecs!r}")


@dataclass(frozen=True)
class ExportFormatSpec(Spec):
    """A format ``forge export ARTIFACT DIR --format NAME`` writes: ``write(manifest, out, *,
    overwrite) -> list[Path]`` (verify the artifact first; return the files written)."""

    kind: ClassVar[str] = "export_format"
    write: Callable[..., list[Path]]

    def __post_init__(self) -> None:
        super().__post_init__()
        self._callable("write")
