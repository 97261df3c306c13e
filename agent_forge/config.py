"""Phase configs: variant presets + a config file + ``--set a.b=c`` overrides, validated early.

A raw config is plain data (dicts, lists, scalars). The order of precedence, lowest first:
the variant's spec, ``--config FILE`` (TOML, YAML or JSON), then each ``--set`` in order.
Validation goes through pydantic models with ``extra="forbid"``; every problem is reported as a
:class:`ConfigError` naming the dotted field path, the value given and what is allowed.
"""

from __future__ import annotations

import copy
import dataclasses
import difflib
import json
import math
import tomllib
import types
import typing
from pathlib import Path
from typing import Any, ClassVar, TypeVar

import yaml
from pydantic import (BaseModel, ConfigDict, Field, ValidationError, ValidationInfo, create_model, field_validator,
                      model_validator)
from pydantic_core import InitErrorDetails, PydanticCustomError

from agent_forge.errors import ConfigError

M = TypeVar("M", bound=BaseModel)


#: The seeds a run accepts: 0 to 2**32 - 1 (what every random generator we seed takes, with room
#: for the ``seed + 1``, ``seed + 2``, ... that ``--models N`` trains).
SEED_MAX = 2**32 - 1


class StrictModel(BaseModel):
    """Base for every config model: unknown keys are errors, assignments are validated, a
    boolean is never taken for a number (pydantic's lax mode reads ``true`` as ``1``; here
    ``--set trainer.batch_size=true`` is refused), and a float is finite (``inf``/``nan`` pass
    every ``gt=0`` bound and then poison a run). Other lax conversions stay: an int where a
    float goes, a list where a tuple goes, a string where a path goes."""

    model_config = ConfigDict(extra="forbid", validate_assignment=True, protected_namespaces=(),
                              allow_inf_nan=False)

    @field_validator("*", mode="before")
    @classmethod
    def _no_bool_for_number(cls, value: Any, info: ValidationInfo) -> Any:
        field = cls.model_fields.get(info.field_name or "")
        if field is not None and _bool_for_number(field.annotation, value):
            raise PydanticCustomError(
                "bool_not_number", "expected a number, got a boolean; write the number itself (true/false is"
                " never read as 1/0)")
        return value


_UNIONS = (typing.Union, types.UnionType)


def _admits(tp: Any, plain: typing.Callable[[Any], bool], literal: typing.Callable[[Any], bool]) -> bool:
    """Whether type ``tp`` takes some kind of value: ``plain(t)`` says it for a type that is no
    Annotated, union or Literal, ``literal(v)`` for a Literal's values; unions take it if a member does."""
    origin, args = typing.get_origin(tp), typing.get_args(tp)
    if origin is typing.Annotated:
        return _admits(args[0], plain, literal)
    if origin in _UNIONS:
        return any(_admits(a, plain, literal) for a in args)
    if origin is typing.Literal:
        return any(literal(a) for a in args)
    return plain(tp)


def _admits_bool(tp: Any) -> bool:
    """Whether a value of type ``tp`` may be a bool (``bool``, ``Any``, a union or Literal with one)."""
    return _admits(tp, lambda t: t is bool or t is Any or t is object or isinstance(t, TypeVar),
                   lambda v: isinstance(v, bool))


def _admits_number(tp: Any) -> bool:
    """Whether ``tp`` takes a number (int, float, a numeric Literal, or a union with one)."""
    return _admits(tp, lambda t: isinstance(t, type) and issubclass(t, (int, float)) and t is not bool,
                   lambda v: isinstance(v, (int, float)) and not isinstance(v, bool))


def _bool_for_number(tp: Any, value: Any) -> bool:
    """True if ``value`` holds a bool where ``tp`` wants a number and no bool: at the top, or
    inside a list, tuple, set or dict value of that type (nested models check their own fields)."""
    if isinstance(value, bool):
        return _admits_number(tp) and not _admits_bool(tp)
    origin, args = typing.get_origin(tp), typing.get_args(tp)
    if origin is typing.Annotated:
        return _bool_for_number(args[0], value)
    if origin in _UNIONS:
        members = [a for a in args if a is not type(None)]
        return bool(members) and all(_bool_for_number(a, value) for a in members)
    if isinstance(value, (list, tuple, set, frozenset)) and origin in (list, tuple, set, frozenset) and args:
        if origin is tuple and not (len(args) == 2 and args[1] is Ellipsis):
            return any(_bool_for_number(t, v) for t, v in zip(args, value))
        return any(_bool_for_number(args[0], v) for v in value)
    if isinstance(value, dict) and origin is dict and len(args) == 2:
        return any(_bool_for_number(args[1], v) for v in value.values())
    return False


#: Keys of a dataclass field's ``metadata`` that become pydantic ``Field`` arguments.
FIELD_METADATA = ("description", "ge", "gt", "le", "lt")


class DataclassConfig(StrictModel):
    """Base of the models :func:`config_from_dataclass` makes; ``to_dataclass()`` gives the config."""

    dataclass: ClassVar[type]

    def to_dataclass(self) -> Any:
        return self.dataclass(**{f.name: getattr(self, f.name) for f in dataclasses.fields(self.dataclass)})

    @model_validator(mode="after")
    def _dataclass_checks(self) -> "DataclassConfig":
        try:
            self.to_dataclass()
        except ValueError as exc:  # the dataclass's __post_init__ refused the values
            name = getattr(exc, "field", None)
            loc, value = ((name,), getattr(self, name)) if name in type(self).model_fields else ((), self.model_dump())
            raise ValidationError.from_exception_data(type(self).__name__, [InitErrorDetails(
                type="value_error", loc=loc, input=value, ctx={"error": str(exc)})]) from None
        return self


def config_from_dataclass(cls: type) -> type[DataclassConfig]:
    """A strict pydantic model with the fields of the dataclass ``cls``, for a plugin's ``config=``.

    Each field keeps its type (``Literal`` choices included) and its default; the ``description``,
    ``ge``, ``gt``, ``le``, ``lt`` in its ``metadata`` become pydantic constraints. The dataclass's
    own ``__post_init__`` runs as a model validator: a ``ValueError`` there is a validation error
    of the section, or of the field named by the exception's ``field`` attribute (as
    ``agent_forge.models.fields.OptionError`` carries), so :func:`validate` reports it as
    ``model.<field>: ...``. Subclass the result to add a docstring or methods::

        class TRMSettings(config_from_dataclass(TRMConfig)):
            def effective_depth(self) -> int:
                return self.to_dataclass().effective_depth()
    """
    hints = typing.get_type_hints(cls)
    fields: dict[str, Any] = {}
    for f in dataclasses.fields(cls):
        kwargs = {key: f.metadata[key] for key in FIELD_METADATA if f.metadata.get(key) not in (None, "")}
        if f.default is not dataclasses.MISSING:
            kwargs["default"] = f.default
        elif f.default_factory is not dataclasses.MISSING:
            kwargs["default_factory"] = f.default_factory
        fields[f.name] = (hints[f.name], Field(**kwargs))
    model = create_model(cls.__name__, __base__=DataclassConfig,
                         __doc__=f"Validated fields of :class:`{cls.__module__}.{cls.__qualname__}`.", **fields)
    model.dataclass = cls
    return model


def deep_merge(base: dict[str, Any], update: dict[str, Any]) -> dict[str, Any]:
    """A new dict: ``update`` merged into ``base``; nested dicts merge, everything else replaces."""
    out = copy.deepcopy(base)
    for key, value in update.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = deep_merge(out[key], value)
        else:
            out[key] = copy.deepcopy(value)
    return out


def flatten(data: dict[str, Any], prefix: str = "", *, keep_empty: bool = True) -> dict[str, Any]:
    """Nested dicts as dotted keys, the form ``--set`` takes: ``{"a": {"b": 1}}`` -> ``{"a.b": 1}``.

    Lists and scalars are leaves (``task.blanks: [6, 8]``); an empty dict is a leaf too
    (``callbacks: {}``), or dropped with ``keep_empty=False``.
    """
    out: dict[str, Any] = {}
    for key, value in data.items():
        name = f"{prefix}.{key}" if prefix else str(key)
        if isinstance(value, dict) and (value or not keep_empty):
            out.update(flatten(value, name, keep_empty=keep_empty))
        else:
            out[name] = value
    return out


def differences(a: Any, b: Any, prefix: str = "") -> list[tuple[str, Any, Any]]:
    """``(dotted key, value in a, value in b)`` for every place two nested dicts differ, keys in
    sorted order level by level. A key one side lacks has None there; where one side is a dict
    and the other is not, the whole values are compared."""
    if isinstance(a, dict) and isinstance(b, dict):
        out: list[tuple[str, Any, Any]] = []
        for key in sorted(set(a) | set(b)):
            out += differences(a.get(key), b.get(key), f"{prefix}.{key}" if prefix else str(key))
        return out
    return [] if a == b else [(prefix, a, b)]


def yaml_problem(exc: yaml.YAMLError) -> str:
    """A YAML error in one line: what is wrong and where (PyYAML's own text spans several)."""
    problem = getattr(exc, "problem", None)
    if not problem:
        return " ".join(str(exc).split())
    mark = getattr(exc, "problem_mark", None)
    return f"{problem} at line {mark.line + 1}, column {mark.column + 1}" if mark is not None else problem


def parse_value(text: str) -> Any:
    """``--set`` values are YAML scalars or flow collections: 3, 0.1, true, null, [a, b], {k: v}.

    Text that YAML cannot read is kept as a string, unless it opens with ``{`` or ``[`` (an
    unclosed ``{d_model: 3``): that raises ValueError saying what is wrong."""
    # Numbers first: YAML 1.1 reads "1e-3" (no dot) as a string.
    for number in (int, float):
        try:
            return number(text)
        except ValueError:
            pass
    try:
        return yaml.safe_load(text) if text.strip() else ""
    except yaml.YAMLError as exc:
        if text.lstrip()[:1] in ("{", "["):  # meant as a list or a section: say what is wrong
            raise ValueError(f"cannot parse {text!r} as a flow collection ({yaml_problem(exc)}); close every"
                             " bracket (e.g. {d_model: 64, n: 2} or [1, 2]), or wrap it in YAML quotes to mean a string") from None
        return text


def apply_override(raw: dict[str, Any], assignment: str) -> dict[str, Any]:
    """Apply one ``a.b.c=value`` to a copy of ``raw``. ``value`` ``null`` on a dict entry removes it."""
    if "=" not in assignment:
        raise ConfigError(f"--set {assignment!r}: expected KEY=VALUE, for example --set trainer.lr=0.001")
    key, _, text = assignment.partition("=")
    parts = [p for p in key.strip().split(".")]
    if not all(parts):
        raise ConfigError(f"--set {assignment!r}: {key!r} is not a dotted key like model.d_model")
    out = copy.deepcopy(raw)
    node = out
    for i, part in enumerate(parts[:-1]):
        child = node.get(part)
        if child is None:
            child = node[part] = {}
        if not isinstance(child, dict):
            where = ".".join(parts[: i + 1])
            raise ConfigError(f"--set {assignment!r}: {where} is a value ({child!r}), not a section")
        node = child
    try:
        value = parse_value(text)
    except ValueError as exc:
        raise ConfigError(f"--set {assignment!r}: {exc}") from None
    if value is None and parts[-1] in node and isinstance(node[parts[-1]], dict):
        del node[parts[-1]]
    else:
        node[parts[-1]] = value
    return out


def apply_overrides(raw: dict[str, Any], assignments: list[str] | tuple[str, ...]) -> dict[str, Any]:
    for assignment in assignments:
        raw = apply_override(raw, assignment)
    return raw


def load_config_file(path: str | Path) -> dict[str, Any]:
    """Read a TOML, YAML or JSON config file (UTF-8); every problem is a ConfigError naming it."""
    path = Path(path)
    if path.is_dir():
        raise ConfigError(f"--config {path}: is a folder; name a .toml, .yaml/.yml or .json file")
    if not path.exists():
        raise ConfigError(f"--config {path}: no such file")
    if path.suffix not in {".toml", ".yaml", ".yml", ".json"}:
        raise ConfigError(f"--config {path}: use a .toml, .yaml/.yml or .json file")
    try:
        text = path.read_bytes().decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ConfigError(f"--config {path}: not UTF-8 text (byte {exc.object[exc.start]:#04x} at offset"
                          f" {exc.start}); save the file as UTF-8") from None
    except OSError as exc:
        raise ConfigError(f"--config {path}: cannot read it: {exc.strerror or exc}") from None
    try:
        if path.suffix == ".toml":
            data = tomllib.loads(text)
        elif path.suffix in {".yaml", ".yml"}:
            data = yaml.safe_load(text)
        else:
            data = json.loads(text)
    except yaml.YAMLError as exc:
        raise ConfigError(f"--config {path}: cannot parse it: {yaml_problem(exc)}") from exc
    except (tomllib.TOMLDecodeError, json.JSONDecodeError) as exc:
        raise ConfigError(f"--config {path}: cannot parse it: {exc}") from exc
    if not isinstance(data, dict):
        raise ConfigError(f"--config {path}: the top level must be a table/mapping of sections")
    return data


def _format_error(model: type[BaseModel], exc: ValidationError, prefix: str, data: Any) -> str:
    lines = []
    for err in exc.errors():
        loc = ".".join(str(p) for p in (prefix, *err["loc"]) if p != "")
        if err["type"] == "extra_forbidden":
            allowed = sorted(model.model_fields)
            name = str(err["loc"][-1])
            # The allowed keys of the innermost model that rejected it.
            sub = _submodel(model, err["loc"][:-1])
            if sub is not None:
                allowed = sorted(sub.model_fields)
            hint = difflib.get_close_matches(name, allowed, n=1)
            did = f" Did you mean {hint[0]!r}?" if hint else ""
            lines.append(f"{loc}: unknown key (value {err['input']!r}).{did} Allowed keys: {', '.join(allowed)}")
        else:
            lines.append(f"{loc}: {err['msg']} (got {err.get('input')!r})")
    return "\n".join(lines)


def _submodel(model: type[BaseModel], loc: tuple[Any, ...]) -> type[BaseModel] | None:
    current: Any = model
    for part in loc:
        field = getattr(current, "model_fields", {}).get(str(part))
        if field is None:
            return None
        current = field.annotation
    return current if isinstance(current, type) and issubclass(current, BaseModel) else None


def non_finite(data: Any, prefix: str = "") -> tuple[str, float] | None:
    """The first ``(dotted path, value)`` in ``data`` holding a float that is inf or NaN, or None."""
    if isinstance(data, float) and not math.isfinite(data):
        return prefix, data
    items = data.items() if isinstance(data, dict) else enumerate(data) if isinstance(data, (list, tuple)) else ()
    for key, value in items:
        found = non_finite(value, f"{prefix}.{key}" if prefix and isinstance(key, str) else
                           f"{prefix}[{key}]" if prefix else str(key))
        if found is not None:
            return found
    return None


def validate(model: type[M], data: Any, prefix: str = "") -> M:
    """Validate ``data`` against ``model``; raise ConfigError with dotted paths under ``prefix``.

    Every float in ``data`` must be finite, whatever ``model`` is (a plugin's own pydantic model
    included): ``trainer.lr=inf`` passes a ``gt=0`` bound and only fails after the run started."""
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise ConfigError(f"{prefix or 'config'}: expected a section (mapping), got {data!r}")
    bad = non_finite(data, prefix)
    if bad is not None:
        raise ConfigError(f"{bad[0]}: {bad[1]!r} is not a finite number; give a finite value")
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        raise ConfigError(_format_error(model, exc, prefix, data)) from None


def check_sections(raw: dict[str, Any], allowed: dict[str, str]) -> None:
    """Refuse unknown top-level sections; ``allowed`` maps each to a one-line description."""
    for key in raw:
        if key not in allowed:
            hint = difflib.get_close_matches(key, list(allowed), n=1)
            did = f" Did you mean {hint[0]!r}?" if hint else ""
            raise ConfigError(f"{key}: unknown section.{did} Sections: {', '.join(allowed)}")
