"""The plugin host: built-ins and entry-point plugins, registered through the same hooks.

``load_plugins()`` returns a :class:`PluginHost` that holds, per spec type
(:class:`~agent_forge.specs.ArchitectureSpec`, :class:`~agent_forge.specs.DatasetSpec`, ...,
and those a phase adds), every registered spec with the plugin that supplied it; look one up
typed with ``host.get(DatasetSpec, "sudoku4")``. A plugin that fails to import, registers a
malformed spec or raises while registering is recorded in ``host.failures`` and skipped;
everything else keeps working.
"""

from __future__ import annotations

import difflib
import importlib
import importlib.metadata as md
import os
import traceback
from dataclasses import dataclass, field
from types import ModuleType
from typing import Any, TypeVar, cast

import pluggy

from agent_forge import hookspecs
from agent_forge.errors import ForgeError
from agent_forge.specs import PhaseSpec, Spec

ENTRY_POINT_GROUP = "agent_forge"
#: Comma-separated plugin names to block (built-in module names or entry-point names).
DISABLE_ENV = "FORGE_DISABLE_PLUGINS"
#: Set to "0" to skip entry points (the test suite does, so installed plugins never leak in).
ENTRY_POINTS_ENV = "FORGE_LOAD_ENTRYPOINTS"

DEFAULT_PLUGINS: tuple[str, ...] = (
    "agent_forge.plugins.architectures",
    "agent_forge.plugins.variants",
    "agent_forge.plugins.trainers",
    "agent_forge.plugins.evaluators",
    "agent_forge.plugins.datasets.sudoku",
    "agent_forge.plugins.datasets.maze",
    "agent_forge.plugins.datasets.arc",
    "agent_forge.plugins.datasets.arc_protocol",
    "agent_forge.plugins.datasets.text",
    "agent_forge.plugins.datasets.files",
    "agent_forge.plugins.datasets.official",
    "agent_forge.plugins.datasets.official_build",
    "agent_forge.plugins.callbacks.ema",
    "agent_forge.plugins.callbacks.early_stop",
    "agent_forge.plugins.callbacks.act",
    "agent_forge.plugins.callbacks.memory",
    "agent_forge.plugins.callbacks.depth",
    "agent_forge.plugins.loggers",
    "agent_forge.plugins.phases",
    "agent_forge.plugins.runs",
    "agent_forge.plugins.generate",
    "agent_forge.plugins.official",
)

S = TypeVar("S", bound=Spec)


class PluginError(ForgeError):
    """A registration conflict, a malformed registration or an unknown name."""


@dataclass(frozen=True)
class Registration:
    """One spec a plugin registered, and the plugin."""

    spec: Spec
    plugin: str

    @property
    def kind(self) -> str:
        return type(self.spec).kind

    @property
    def name(self) -> str:
        return self.spec.name


@dataclass(frozen=True)
class PluginInfo:
    name: str
    origin: str  # "builtin" or "entrypoint"
    distribution: str | None = None
    version: str | None = None


@dataclass(frozen=True)
class PluginFailure:
    name: str
    origin: str
    distribution: str | None
    version: str | None
    error: str
    traceback: str

    def describe(self) -> str:
        dist = f" ({self.distribution} {self.version})" if self.distribution else ""
        return f"plugin {self.name!r}{dist} failed and was skipped: {self.error}"


@dataclass
class PluginHost:
    """Registered specs by type, the loaded plugins, and those that failed."""

    pm: pluggy.PluginManager
    plugins: dict[str, PluginInfo] = field(default_factory=dict)
    failures: list[PluginFailure] = field(default_factory=list)
    registry: dict[type[Spec], dict[str, Registration]] = field(default_factory=dict)
    #: Registration hook name -> the spec type it takes: the core's, then those phases added.
    registration_hooks: dict[str, type[Spec]] = field(default_factory=lambda: dict(hookspecs.REGISTRATION_HOOKS))
    #: The hook-spec modules the registered phases added.
    phase_hookspecs: list[ModuleType] = field(default_factory=list)

    @property
    def hook(self) -> Any:
        return self.pm.hook

    def items(self, spec_type: type[S]) -> dict[str, S]:
        """Every registered spec of ``spec_type``, by name."""
        return {name: cast(S, reg.spec) for name, reg in self.registry.get(spec_type, {}).items()}

    def get(self, spec_type: type[S], name: str) -> S:
        """The spec ``name`` of ``spec_type``, or an error listing what exists."""
        regs = self.registry.get(spec_type, {})
        if name in regs:
            spec = regs[name].spec
            assert isinstance(spec, spec_type)  # registration checked it
            return spec
        kind = spec_type.kind
        known = sorted(regs)
        hint = difflib.get_close_matches(name, known, n=1)
        did_you_mean = f" Did you mean {hint[0]!r}?" if hint else ""
        raise PluginError(
            f"Unknown {kind} {name!r}.{did_you_mean} Registered {kind}s: {', '.join(known) or 'none'}."
            f" (`forge plugins` lists them with the plugin that supplied each.)"
        )

    def plugin_of(self, spec_type: type[Spec], name: str) -> str:
        """The plugin that registered ``name`` of ``spec_type`` (an unknown name raises as :meth:`get`)."""
        self.get(spec_type, name)
        return self.registry[spec_type][name].plugin

    def registered_by(self, plugin: str) -> list[Registration]:
        return [r for items in self.registry.values() for r in items.values() if r.plugin == plugin]

    # -- registration -------------------------------------------------------------------
    def _register_from(self, hook_name: str, spec_type: type[Spec]) -> None:
        caller = getattr(self.pm.hook, hook_name, None)
        if caller is None:  # nobody implements it
            return
        for impl in caller.get_hookimpls():  # registration order: built-ins first, so they keep their names
            plugin = impl.plugin_name
            staged: list[Registration] = []

            def register(*args: Any, _staged: list[Registration] = staged, _plugin: str = plugin,
                         **kwargs: Any) -> None:
                spec = args[0] if len(args) == 1 and not kwargs else None
                if not isinstance(spec, spec_type):
                    raise PluginError(_wrong_call(_plugin, hook_name, spec_type, args, kwargs))
                _staged.append(Registration(spec, _plugin))

            try:
                impl.function(register=register)
                items = self.registry.setdefault(spec_type, {})
                for reg in staged:
                    if reg.name in items:
                        other = items[reg.name].plugin
                        raise PluginError(
                            f"{spec_type.kind} {reg.name!r} is registered by both {other!r} and {reg.plugin!r};"
                            f" rename one, or block one with {DISABLE_ENV}={reg.plugin}"
                        )
                for reg in staged:
                    items[reg.name] = reg
            except Exception as exc:  # a broken plugin is reported, never fatal
                self._fail(plugin, exc)

    def _add_phase_hookspecs(self) -> None:
        """Add the hook specs each registered phase brings (pluggy's ``add_hookspecs``), and the
        registration hooks among them, so the plugins' implementations of them are checked and
        called like the core's."""
        for reg in list(self.registry.get(PhaseSpec, {}).values()):
            assert isinstance(reg.spec, PhaseSpec)
            for module in reg.spec.hookspecs:
                if module in self.phase_hookspecs:  # two phases may share one module
                    continue
                try:
                    self.pm.add_hookspecs(module)
                    self.phase_hookspecs.append(module)
                except pluggy.PluginValidationError as exc:  # an implementation with the wrong arguments
                    self.phase_hookspecs.append(module)  # its specs were set before the check failed
                    self._fail(self.pm.get_name(exc.plugin) or "unknown", exc)
                except Exception as exc:
                    self._fail(reg.plugin, exc)
                    continue
                for hook_name, spec_type in getattr(module, "REGISTRATION_HOOKS", {}).items():
                    self.registration_hooks.setdefault(hook_name, spec_type)

    def _fail(self, plugin: str, exc: BaseException) -> None:
        info = self.plugins.get(plugin, PluginInfo(plugin, "unknown"))
        self.failures.append(PluginFailure(
            name=plugin, origin=info.origin, distribution=info.distribution, version=info.version,
            error=f"{type(exc).__name__}: {exc}",
            traceback="".join(traceback.format_exception(exc)),
        ))
        # Drop everything it registered so far so half a plugin never stays active.
        for items in self.registry.values():
            for name in [n for n, r in items.items() if r.plugin == plugin]:
                del items[name]
        if self.pm.is_registered(self.pm.get_plugin(plugin)):
            self.pm.unregister(name=plugin)


def _wrong_call(plugin: str, hook_name: str, spec_type: type[Spec], args: tuple[Any, ...],
                kwargs: dict[str, Any]) -> str:
    """What to write instead: ``register(...)`` takes one spec of the hook's type."""
    where = spec_type.__module__.removesuffix(".hookspecs")  # a phase exports its specs from its package
    fix = (f"call register({spec_type.__name__}(...)) with one {spec_type.signature()}"
           f" (from {where} import {spec_type.__name__})")
    if len(args) == 1 and not kwargs and isinstance(args[0], Spec):
        return f"plugin {plugin!r}: {hook_name} got a {type(args[0]).__name__}; {fix}"
    if args and isinstance(args[0], str):
        # The 0.1 form register(name, obj, config=..., description=...): no adapter, a clear fix.
        return (f"plugin {plugin!r}: {hook_name} called register({args[0]!r}, ...) with the old arguments"
                f" (name, object, config=, description=), which this version no longer takes; {fix}."
                f" docs/plugins.md, \"Migration notes\", shows the change")
    return f"plugin {plugin!r}: {hook_name} called register() with {len(args)} arguments; {fix}"


def _disabled() -> set[str]:
    return {p.strip() for p in os.environ.get(DISABLE_ENV, "").split(",") if p.strip()}


def _entry_points_enabled() -> bool:
    return os.environ.get(ENTRY_POINTS_ENV, "1") not in {"0", "false", "no"}


def load_plugins(
    *,
    entry_points: bool | None = None,
    extra: tuple[Any, ...] = (),
) -> PluginHost:
    """Build a host: built-ins, then (unless disabled) every ``agent_forge`` entry point.

    ``extra`` adds plugin objects (modules or instances) after the built-ins; the tests and
    embedding programs use it to register plugins inline.
    """
    pm = pluggy.PluginManager(hookspecs.PROJECT_NAME)
    pm.add_hookspecs(hookspecs)
    host = PluginHost(pm)
    blocked = _disabled()
    for name in blocked:
        pm.set_blocked(name)

    for modname in DEFAULT_PLUGINS:
        if modname in blocked:
            continue
        host.plugins[modname] = PluginInfo(modname, "builtin")
        try:
            pm.register(importlib.import_module(modname), name=modname)
        except Exception as exc:
            host._fail(modname, exc)

    for obj in extra:
        name = getattr(obj, "__name__", None) or f"inline-{id(obj):x}"
        host.plugins[name] = PluginInfo(name, "inline")
        try:
            pm.register(obj, name=name)
        except Exception as exc:
            host._fail(name, exc)

    if entry_points if entry_points is not None else _entry_points_enabled():
        for ep in md.entry_points(group=ENTRY_POINT_GROUP):
            if ep.name in blocked or pm.has_plugin(ep.name):
                continue
            dist = ep.dist.name if ep.dist else None
            version = ep.dist.version if ep.dist else None
            host.plugins[ep.name] = PluginInfo(ep.name, "entrypoint", dist, version)
            try:
                pm.register(ep.load(), name=ep.name)
            except Exception as exc:
                host._fail(ep.name, exc)

    # The phases first: the hooks they add must be known before the plugins' hooks are checked.
    host._register_from("forge_register_phases", PhaseSpec)
    host._add_phase_hookspecs()

    # A hook implementation with a misspelled name: fail the plugin that has it, then look again.
    for _ in range(len(host.plugins) + 1):
        try:
            pm.check_pending()
            break
        except pluggy.PluginValidationError as exc:
            host._fail(pm.get_name(exc.plugin) or "unknown", exc)

    for hook_name, spec_type in host.registration_hooks.items():
        if spec_type is not PhaseSpec:
            host._register_from(hook_name, spec_type)
    return host


_default_host: PluginHost | None = None


def get_host(reload: bool = False) -> PluginHost:
    """A process-wide host, loaded once (``reload=True`` builds it again)."""
    global _default_host
    if _default_host is None or reload:
        _default_host = load_plugins()
    return _default_host


def describe_plugins(host: PluginHost) -> list[dict[str, Any]]:
    """Plain data for ``forge plugins``: one row per plugin, broken ones included."""
    rows: list[dict[str, Any]] = []
    failed = {f.name: f for f in host.failures}
    for name, info in host.plugins.items():
        regs = host.registered_by(name)
        hooks = []
        plugin_obj = host.pm.get_plugin(name)
        if plugin_obj is not None:
            hooks = sorted(c.name for c in host.pm.get_hookcallers(plugin_obj) or [])
        row: dict[str, Any] = {
            "name": name,
            "origin": info.origin,
            "distribution": info.distribution,
            "version": info.version,
            "status": "failed" if name in failed else "ok",
            "registered": {k: sorted(r.name for r in regs if r.kind == k)
                           for k in sorted({r.kind for r in regs})},
            "hooks": hooks,
        }
        if name in failed:
            row["error"] = failed[name].error
        rows.append(row)
    return rows

