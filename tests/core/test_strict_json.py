"""One set of strict JSON checks (core.common.schema) for every section with a reader of its own: the gate,
the intake check and the cascade refuse the same bad values, each message naming its section and field."""

from __future__ import annotations

import math

import pytest

from core.common.schema import SchemaError, check_free_json, json_keys, json_number
from core.decision.cascade import CascadeMargins
from core.decision.gate import GateSettings, check_confidence
from core.decision.intake_check import IntakeCheck

CASCADE = {"members": [0], "views": ["id"], "max_spread": 0.2, "levels": {"0.99": {"clear_below": 0.1}}}


@pytest.mark.parametrize(
    "value, message",
    [
        (True, "gate: x must be a number, got bool True"),
        ("0.5", "gate: x must be a number, got str '0.5'"),
        (math.nan, "gate: x must be a finite number in [0, 1], got nan"),
        (1.5, "gate: x must be a finite number in [0, 1], got 1.5"),
        (10**400, "gate: x must be a finite number in [0, 1], got inf"),  # no OverflowError escapes
    ],
)
def test_json_number_refuses_what_is_not_a_finite_number_in_range(value, message):
    with pytest.raises(SchemaError) as err:
        json_number(value, "gate: x")
    assert str(err.value) == message
    assert json_number(3, "gate: x", 0, 10) == 3.0 and isinstance(json_number(3, "gate: x", 0, 10), float)


def test_json_number_without_a_range_says_none():
    with pytest.raises(SchemaError, match=r"^ood.threshold must be a finite number, got inf$"):
        json_number(math.inf, "ood.threshold", -math.inf, math.inf)


def test_json_keys_names_the_section_the_object_and_the_keys():
    with pytest.raises(SchemaError, match=r"^cascade: levels\[0.99\] must be a JSON object, got list$"):
        json_keys([], {"a"}, set(), "levels[0.99]", "cascade")
    with pytest.raises(SchemaError, match=r"^gate: unknown key\(s\) in the gate section: b, c; allowed: a$"):
        json_keys({"a": 1, "c": 2, "b": 3}, {"a"}, set(), "the gate section", "gate")
    with pytest.raises(SchemaError, match=r"^ood: the ood section lacks clear_threshold, threshold$"):
        json_keys({}, {"threshold", "clear_threshold"}, {"threshold", "clear_threshold"}, "the ood section", "ood")


@pytest.mark.parametrize(
    "read, words",
    [
        (lambda: GateSettings.from_dict({"max_member_spread": True}), "gate: max_member_spread must be a number"),
        (lambda: GateSettings.from_dict({"fitted": {"0.99": {"low": "0.1", "high": 0.9}}}), "fitted[0.99].low"),
        (lambda: GateSettings.from_dict({"fitted": {"0.99": {"low": 0.1}}}), "gate: fitted[0.99] lacks high"),
        (lambda: IntakeCheck.from_dict({"threshold": True, "clear_threshold": 5.0}), "ood.threshold must be a"),
        (lambda: IntakeCheck.from_dict({"threshold": math.nan, "clear_threshold": 5.0}), "ood.threshold must be a"),
        (lambda: IntakeCheck.from_dict({"threshold": 2.0}), "ood: the ood section lacks clear_threshold"),
        (lambda: IntakeCheck.from_dict({"threshold": 2.0, "clear_threshold": 5.0, "x": 1}), "ood: unknown key"),
        (lambda: CascadeMargins.from_dict({**CASCADE, "max_spread": True}), "cascade: max_spread must be a number"),
        (lambda: CascadeMargins.from_dict({**CASCADE, "levels": {"0.99": {}}}), "cascade: levels[0.99] lacks"),
        (lambda: CascadeMargins.from_dict({**CASCADE, "levels": {"high": {}}}), "cascade: levels key 'high' is not"),
        (lambda: GateSettings.from_dict({"fitted": {"0.9x": {}}}), "gate: fitted key '0.9x' is not a confidence"),
    ],
)
def test_each_section_reads_its_numbers_and_objects_the_same_strict_way(read, words):
    with pytest.raises(ValueError) as err:
        read()
    assert words in str(err.value)


def test_the_confidence_range_is_one_rule_with_one_message():
    assert check_confidence(0.5) == 0.5 and check_confidence(0.99) == 0.99
    for bad in (1.0, 0.49, math.nan, True, "0.9"):
        with pytest.raises(ValueError, match=r"must be in \[0.5, 1\), got"):
            check_confidence(bad)
    with pytest.raises(ValueError, match=r"^gate: default_confidence must be in \[0.5, 1\), got 1.0$"):
        GateSettings(default_confidence=1.0)
    with pytest.raises(ValueError, match=r"^confidence must be in \[0.5, 1\), got 0.3$"):
        GateSettings().thresholds(0.3)


def test_free_json_is_bounded_in_depth_and_finite():
    check_free_json({"a": [1, 2.5, None, True, "x", {"b": -3}]}, "provenance")
    with pytest.raises(SchemaError, match=r"^provenance.a\[1\]: must be a finite number, got nan$"):
        check_free_json({"a": [1, math.nan]}, "provenance")
    deep: object = 1
    for _ in range(20):
        deep = [deep]
    with pytest.raises(SchemaError, match="nested deeper than 16 levels"):
        check_free_json({"d": deep}, "provenance")
    with pytest.raises(SchemaError, match=r"provenance.n: integer out of range"):
        check_free_json({"n": 2**64}, "provenance")
