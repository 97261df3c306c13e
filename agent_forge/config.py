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
import tomllib
import typing
from pathlib import Path
from typing import Any, ClassVar, TypeVar

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, create_model, model_validator
from pydantic_core import InitErrorDetails

from agent_forge.errors import ConfigError

M = TypeVar("M", bound=BaseModel)


class StrictModel(BaseModel):
    """Base for every config model: unknown keys are errors, assignments are validated."""

    model_config = ConfigDict(extra="forbid", validate_assignment=True, protected_namespaces=())


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


def parse_value(text: str) -> Any:
    """``--set`` values are YAML scalars or flow collections: 3, 0.1, true, null, [a, b], {k: v}."""
    # Numbers first: YAML 1.1 reads "1e-3" (no dot) as a string.
    for number in (int, float):
        try:
            return number(text)
        except ValueError:
            pass
    try:
        return yaml.safe_load(text) if text.strip() else ""
    except yaml.YAMLError:
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
    value = parse_value(text)
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
    path = Path(path)
    if not path.exists():
        raise ConfigError(f"--config {path}: no such file")
    text = path.read_text()
    try:
        if path.suffix == ".toml":
            data = tomllib.loads(text)
        elif path.suffix in {".yaml", ".yml"}:
            data = yaml.safe_load(text)
        elif path.suffix == ".json":
            data = json.loads(text)
        else:
            raise ConfigError(f"--config {path}: use a .toml, .yaml/.yml or .json file")
    except (tomllib.TOMLDecodeError, yaml.YAMLError, json.JSONDecodeError) as exc:
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


def validate(model: type[M], data: Any, prefix: str = "") -> M:
    """Validate ``data`` against ``model``; raise ConfigError with dotted paths under ``prefix``."""
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise ConfigError(f"{prefix or 'config'}: expected a section (mapping), got {data!r}")
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
