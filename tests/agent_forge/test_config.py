import pytest
from hypothesis import given
from hypothesis import strategies as st

from agent_forge.config import apply_override, apply_overrides, deep_merge, load_config_file, parse_value
from agent_forge.errors import ConfigError
from agent_forge.phases.cognate.config import validate_cognate
from agent_forge.plugins.variants import VARIANTS
from agent_forge.specs import DatasetSpec


def test_overrides_parse_yaml_scalars_and_lists():
    raw = apply_overrides({"a": {"b": 1}}, ["a.b=2", "a.c=0.5", "a.d=true", "x.y=[1, 2]", "a.e=hello"])
    assert raw == {"a": {"b": 2, "c": 0.5, "d": True, "e": "hello"}, "x": {"y": [1, 2]}}


def test_null_removes_a_section():
    assert apply_override({"callbacks": {"ema": {}, "act": {}}}, "callbacks.ema=null") == {"callbacks": {"act": {}}}


def test_override_into_a_value_is_an_error():
    with pytest.raises(ConfigError, match="a.b is a value"):
        apply_override({"a": {"b": 1}}, "a.b.c=2")
    with pytest.raises(ConfigError, match="KEY=VALUE"):
        apply_override({}, "no-equals-sign")


@given(st.dictionaries(st.text("abc", min_size=1, max_size=3), st.integers(), max_size=4),
       st.dictionaries(st.text("abc", min_size=1, max_size=3), st.integers(), max_size=4))
def test_deep_merge_update_wins_and_base_is_untouched(base, update):
    before = dict(base)
    merged = deep_merge(base, update)
    assert base == before
    for k, v in update.items():
        assert merged[k] == v
    for k in set(base) - set(update):
        assert merged[k] == base[k]


@given(st.integers() | st.booleans() | st.floats(allow_nan=False, allow_infinity=False))
def test_parse_value_round_trips_scalars(value):
    assert parse_value(str(value).lower() if isinstance(value, bool) else repr(value)) == value


def test_typo_in_trainer_names_the_key_and_suggests(host):
    raw = apply_override(VARIANTS["trm_small"][0], "trainer.ema_decya=0.9")
    with pytest.raises(ConfigError) as err:
        validate_cognate(host, raw)
    msg = str(err.value)
    assert "trainer.ema_decya" in msg and "0.9" in msg and "Allowed keys" in msg


def test_typo_in_callback_suggests_the_right_key(host):
    raw = apply_override(VARIANTS["trm_small"][0], "callbacks.ema.decya=0.9")
    with pytest.raises(ConfigError, match=r"callbacks\.ema\.decya.*Did you mean 'decay'"):
        validate_cognate(host, raw)


def test_bad_value_names_field_value_and_rule(host):
    raw = apply_override(VARIANTS["trm_small"][0], "model.n=0")
    with pytest.raises(ConfigError, match=r"model\.n: .*greater than or equal to 1.*got 0"):
        validate_cognate(host, raw)


def test_unknown_section_and_unknown_plugin(host):
    with pytest.raises(ConfigError, match="Did you mean 'trainer'"):
        validate_cognate(host, {**VARIANTS["trm_small"][0], "trainr": {}})
    with pytest.raises(Exception, match="Unknown dataset 'sudoku7'"):
        validate_cognate(host, apply_override(VARIANTS["trm_small"][0], "task.name=sudoku7"))


@pytest.mark.parametrize("name", sorted(VARIANTS))
def test_every_variant_validates_to_what_its_preset_says(host, name):
    import json

    spec = VARIANTS[name][0]
    # Every preset's task is a built-in one: a missing plugin is a failure, never a skip.
    assert spec["task"]["name"] in host.items(DatasetSpec), spec["task"]["name"]
    cfg = validate_cognate(host, spec)
    assert cfg.task_name == spec["task"]["name"] and cfg.architecture == spec["model"]["architecture"]
    dumped = cfg.model_dump()
    for section in ("model", "task", "trainer"):
        for key, value in spec.get(section, {}).items():  # each value the preset sets is the one validated
            assert dumped[section][key] == json.loads(json.dumps(value)), (section, key)
    assert sorted(dumped["callbacks"]) == sorted(spec.get("callbacks") or {})


def test_config_files_toml_yaml_json(tmp_path):
    (tmp_path / "c.toml").write_text('[trainer]\nlr = 0.01\n')
    (tmp_path / "c.yaml").write_text('trainer:\n  lr: 0.01\n')
    (tmp_path / "c.json").write_text('{"trainer": {"lr": 0.01}}')
    for name in ("c.toml", "c.yaml", "c.json"):
        assert load_config_file(tmp_path / name) == {"trainer": {"lr": 0.01}}
    (tmp_path / "bad.yaml").write_text("trainer: [unclosed")
    with pytest.raises(ConfigError, match="cannot parse"):
        load_config_file(tmp_path / "bad.yaml")
    with pytest.raises(ConfigError, match="no such file"):
        load_config_file(tmp_path / "missing.toml")


def test_a_bool_is_never_a_number_in_any_config_field():
    import dataclasses
    from typing import Literal

    from agent_forge.config import StrictModel, config_from_dataclass, validate

    class Section(StrictModel):
        count: int = 1
        rate: float | None = None
        pair: tuple[float, float] = (0.1, 0.2)
        sizes: list[int] = []
        choice: Literal[1, 2] = 1
        flag: bool = False
        either: int | bool = 0

    for key, value in (("count", True), ("rate", False), ("pair", [True, 0.2]), ("sizes", [1, True]),
                       ("choice", True)):
        with pytest.raises(ConfigError, match=rf"s\.{key}: expected a number, got a boolean"):
            validate(Section, {key: value}, "s")
    ok = validate(Section, {"flag": True, "either": True, "count": 3, "rate": 2, "pair": [1, 2]}, "s")
    assert (ok.flag, ok.either, ok.count, ok.rate, ok.pair) == (True, True, 3, 2.0, (1.0, 2.0))
    with pytest.raises(Exception, match="boolean"):
        ok.count = True  # assignments are validated the same way

    @dataclasses.dataclass
    class Plain:
        width: int = 4

    with pytest.raises(ConfigError, match=r"model\.width: expected a number, got a boolean"):
        validate(config_from_dataclass(Plain), {"width": True}, "model")


def test_an_unclosed_flow_collection_in_set_is_an_error_not_a_string():
    with pytest.raises(ConfigError, match=r"--set 'model=\{d_model: 3': cannot parse .*close every bracket"):
        apply_override({}, "model={d_model: 3")
    with pytest.raises(ConfigError, match=r"\[1, 2"):
        apply_override({}, "x=[1, 2")
    assert apply_override({}, "x=a: b: c") == {"x": "a: b: c"}  # other text YAML cannot read stays a string


def test_config_file_that_is_a_folder_or_not_utf8(tmp_path):
    with pytest.raises(ConfigError, match="is a folder"):
        load_config_file(tmp_path)
    (tmp_path / "latin1.toml").write_bytes("[trainer]\nname = 'caf\xe9'\n".encode("latin-1"))
    with pytest.raises(ConfigError, match=r"not UTF-8 text \(byte 0xe9"):
        load_config_file(tmp_path / "latin1.toml")
    (tmp_path / "bad.yaml").write_text("trainer: [unclosed")
    with pytest.raises(ConfigError) as err:
        load_config_file(tmp_path / "bad.yaml")
    assert "\n" not in str(err.value) and "line 1" in str(err.value)


def test_flatten_writes_nested_dicts_as_dotted_keys():
    from agent_forge.config import flatten

    config = {"model": {"d_model": 64, "moh": {}}, "task": {"blanks": [6, 8]}, "callbacks": {}, "seed": 0}
    assert flatten(config) == {"model.d_model": 64, "model.moh": {}, "task.blanks": [6, 8], "callbacks": {},
                               "seed": 0}
    assert flatten(config, keep_empty=False) == {"model.d_model": 64, "task.blanks": [6, 8], "seed": 0}
    assert flatten({}) == {}


def test_differences_name_each_dotted_key_with_both_values():
    from agent_forge.config import differences

    a = {"model": {"n": 2, "T": 3}, "seed": 0, "gone": 1, "kind": {"x": 1}}
    b = {"model": {"n": 3, "T": 3}, "seed": 0, "new": [1], "kind": "flat"}
    assert differences(a, b) == [("gone", 1, None), ("kind", {"x": 1}, "flat"), ("model.n", 2, 3), ("new", None, [1])]
    assert differences(a, a) == []
