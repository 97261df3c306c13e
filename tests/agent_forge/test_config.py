import pytest
from hypothesis import given
from hypothesis import strategies as st

from agent_forge.config import apply_override, apply_overrides, deep_merge, load_config_file, parse_value
from agent_forge.errors import ConfigError
from agent_forge.phases.cognate.phase import validate_cognate
from agent_forge.plugins.variants import VARIANTS


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
def test_every_variant_validates(host, name):
    if VARIANTS[name][0]["task"]["name"] not in host.items("dataset"):
        pytest.skip("task plugin not registered")
    validate_cognate(host, VARIANTS[name][0])


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
