"""config_from_dataclass: one definition of a config's fields, validated like every other section."""

from dataclasses import dataclass, field
from typing import Literal

import pytest

from agent_forge.config import config_from_dataclass, validate
from agent_forge.errors import ConfigError


class FieldError(ValueError):
    def __init__(self, name, message):
        super().__init__(message)
        self.field = name


@dataclass
class Toy:
    width: int = field(default=8, metadata={"description": "Width.", "ge": 2})
    rate: float = field(default=0.5, metadata={"gt": 0, "le": 1})
    kind: Literal["a", "b"] = "a"
    tags: list[str] = field(default_factory=list)

    def __post_init__(self):
        if self.width % 2:
            raise FieldError("width", f"width={self.width} is odd; use an even width")
        if self.kind == "b" and self.rate > 0.9:
            raise ValueError("kind='b' needs rate <= 0.9")  # no field named: the section is blamed


class ToySettings(config_from_dataclass(Toy)):
    def double(self) -> int:
        return 2 * self.to_dataclass().width


def test_fields_defaults_and_descriptions_come_from_the_dataclass():
    cfg = ToySettings()
    assert cfg.model_dump(mode="json") == {"width": 8, "rate": 0.5, "kind": "a", "tags": []}
    assert ToySettings.model_fields["width"].description == "Width."
    assert ToySettings.model_validate(cfg.model_dump(mode="json")) == cfg  # round trip
    made = ToySettings(width=4, tags=["x"]).to_dataclass()
    assert isinstance(made, Toy) and made == Toy(width=4, tags=["x"])
    assert ToySettings(width=6).double() == 12


@pytest.mark.parametrize("data,message", [
    ({"widht": 4}, r"toy\.widht: unknown key .*Did you mean 'width'"),
    ({"width": 1}, r"toy\.width: .*greater than or equal to 2.*got 1"),
    ({"rate": 0}, r"toy\.rate: .*greater than 0"),
    ({"kind": "c"}, r"toy\.kind: .*'a' or 'b'"),
    ({"width": 5}, r"toy\.width: .*width=5 is odd; use an even width \(got 5\)"),
    ({"kind": "b", "rate": 1.0}, r"toy: .*kind='b' needs rate <= 0\.9"),
])
def test_bad_values_are_config_errors_naming_the_field(data, message):
    with pytest.raises(ConfigError, match=message):
        validate(ToySettings, data, "toy")


def test_assignments_run_the_dataclass_checks_too():
    cfg = ToySettings()
    with pytest.raises(ValueError, match="odd"):
        cfg.width = 3
