import math

import pytest

from agent_forge.formatting import format_number, format_spread, kind_for


@pytest.mark.parametrize("value, kind, text", [
    (134337, "count", "134,337"), (134337.0, "count", "134,337"), (1234.5, "count", "1,234.5"), (0, "count", "0"),
    (0.91234, "fraction", "0.912"), (1.0, "fraction", "1.000"), (0, "fraction", "0.000"),
    (0.423, "seconds", "0.42 s"), (4.21, "seconds", "4.2 s"), (42.4, "seconds", "42 s"),
    (200.2, "seconds", "3 min 20 s"), (3725, "seconds", "1 h 02 min"),
    (1.08347, "float", "1.083"), (0.0031, "float", "0.0031"), (12345.6, "float", "12,346"), (0.0, "float", "0"),
    (1e-5, "float", "1e-05"), (2.5e7, "float", "2.5e+07"), (-0.25, "float", "-0.25"),
])
def test_format_number_writes_numbers_as_a_person_would(value, kind, text):
    assert format_number(value, kind) == text


@pytest.mark.parametrize("value", [None, float("nan")])
@pytest.mark.parametrize("kind", ["count", "fraction", "seconds", "float"])
def test_missing_values_are_never_nan(value, kind):
    assert format_number(value, kind) == "n/a"


def test_auto_reads_the_metric_name():
    assert kind_for("raw/exact_accuracy") == "fraction" and kind_for("early_stop_rate") == "fraction"
    assert kind_for("parameters") == "count" and kind_for("steps") == "count"
    assert kind_for("train_seconds") == "seconds" and kind_for("examples_per_s") == "float"
    assert kind_for("final_loss") == "float" and kind_for("mean_sup_steps") == "float"
    assert format_number(134337.0, "auto", key="parameters") == "134,337"
    assert format_number(0.5, "auto", key="ema/token_accuracy") == "0.500"
    with pytest.raises(ValueError, match="unknown kind"):
        format_number(1, "percent")


def test_spread_with_one_seed_is_not_zero():
    assert format_spread(0.5, 0.0, 1, "fraction") == "0.500 ± n/a (1 seed)"
    assert format_spread(0.5, 0.0126, 3, "fraction") == "0.500 ± 0.013"
    assert format_spread(math.nan, 0.1, 2, "fraction") == "n/a"
    assert format_spread(1200, 30, 2, "count") == "1,200 ± 30"
