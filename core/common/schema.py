"""One strict reader for JSON settings that decide outcomes (the bundle manifest and its sections).

A frozen dataclass declares its JSON form: each field carries a `Rule` in its metadata (kind and
range). `read_fields` checks a decoded JSON object against those rules in one place: unknown keys,
wrong types (a bool is not a number, "448" is not an integer), NaN and inf, out-of-range numbers,
over-long strings and lists. It raises `SchemaError` (a ValueError) whose message names the field,
e.g. "preprocessing.clahe_tiles: must be an integer in 1..64, got 0".

The sections with readers of their own (the gate, the intake check, the cascade) check their numbers and
objects with `json_number` and `json_keys`: the same rules, messages that name the section first.
"""

from __future__ import annotations

import math
import re
from dataclasses import MISSING, dataclass, fields

MAX_TEXT = 200  # default bound of a string field
FREE_JSON_DEPTH = 16  # provenance and metrics: free-form, but bounded
FREE_JSON_NODES = 200_000
FREE_JSON_TEXT = 16_384


class SchemaError(ValueError):
    """A JSON value does not match its declared rule; the message names the field."""


@dataclass(frozen=True)
class Rule:
    """How one field looks in JSON. `kind`: int, float, bool, str, str_list, float_list or json."""

    kind: str
    lo: float | None = None
    hi: float | None = None
    lo_open: bool = False  # lo itself excluded: (lo, hi]
    max_len: int = MAX_TEXT  # characters of a string, or of each string in a list
    min_items: int = 0
    max_items: int = 0
    pattern: str | None = None  # a full-match regular expression for strings
    unique: bool = False


def rule(kind: str, **kwargs) -> dict:
    """Field metadata: `x: int = field(metadata=rule("int", lo=1, hi=64))`."""
    return {"rule": Rule(kind, **kwargs)}


def _range_text(r: Rule) -> str:
    if r.lo is None and r.hi is None:
        return ""
    lo = "" if r.lo is None else f"{r.lo:g}"
    hi = "" if r.hi is None else f"{r.hi:g}"
    if r.kind == "int":
        return f" in {lo}..{hi}"
    return f" in {'(' if r.lo_open else '['}{lo}, {hi}]"


def _number(value, r: Rule, where: str, integer: bool):
    what = "an integer" if integer else "a finite number"
    ok_type = isinstance(value, int) if integer else isinstance(value, (int, float))
    if isinstance(value, bool) or not ok_type:
        raise SchemaError(f"{where}: must be {what}{_range_text(r)}, got {_show(value)}")
    if not integer:
        value = _as_float(value)
        if not math.isfinite(value):
            raise SchemaError(f"{where}: must be {what}{_range_text(r)}, got {value}")
    too_low = r.lo is not None and (value <= r.lo if r.lo_open else value < r.lo)
    too_high = r.hi is not None and value > r.hi
    if too_low or too_high:
        raise SchemaError(f"{where}: must be {what}{_range_text(r)}, got {_show(value)}")
    return value


def _text(value, r: Rule, where: str) -> str:
    if not isinstance(value, str):
        raise SchemaError(f"{where}: must be a string, got {_show(value)}")
    if len(value) > r.max_len:
        raise SchemaError(f"{where}: longer than {r.max_len} characters")
    if r.min_items and len(value) < r.min_items:
        raise SchemaError(f"{where}: must not be empty")
    if r.pattern is not None and not re.fullmatch(r.pattern, value):
        raise SchemaError(f"{where}: {_show(value)} is not of the expected form")
    return value


def _items(value, r: Rule, where: str) -> list:
    if not isinstance(value, list):
        raise SchemaError(f"{where}: must be a list, got {_show(value)}")
    if len(value) < r.min_items or (r.max_items and len(value) > r.max_items):
        raise SchemaError(f"{where}: needs {r.min_items}..{r.max_items} entries, got {len(value)}")
    return value


def check_value(value, r: Rule, where: str):
    """The value as its field stores it (tuples for lists), or SchemaError."""
    if r.kind == "int":
        return _number(value, r, where, integer=True)
    if r.kind == "float":
        return _number(value, r, where, integer=False)
    if r.kind == "bool":
        if not isinstance(value, bool):
            raise SchemaError(f"{where}: must be true or false, got {_show(value)}")
        return value
    if r.kind == "str":
        return _text(value, r, where)
    if r.kind == "str_list":
        one = Rule("str", max_len=r.max_len, pattern=r.pattern, min_items=1)
        out = tuple(_text(v, one, f"{where}[{i}]") for i, v in enumerate(_items(value, r, where)))
        if r.unique and len(set(out)) != len(out):
            raise SchemaError(f"{where}: entries must not repeat")
        return out
    if r.kind == "float_list":
        one = Rule("float", lo=r.lo, hi=r.hi, lo_open=r.lo_open)
        return tuple(_number(v, one, f"{where}[{i}]", integer=False) for i, v in enumerate(_items(value, r, where)))
    if r.kind == "json":
        check_free_json(value, where)
        return value
    raise AssertionError(f"unknown rule kind {r.kind!r}")


def _unknown_keys(data: dict, known) -> list[str]:
    return sorted(str(k) for k in set(data) - set(known))


def check_object(data, where: str, known: set[str] | frozenset[str]) -> dict:
    """`data` is a JSON object with no key outside `known`."""
    if not isinstance(data, dict):
        raise SchemaError(f"{where}: must be an object, got {_show(data)}")
    unknown = _unknown_keys(data, known)
    if unknown:
        raise SchemaError(f"{where}: unknown keys {', '.join(_show(k) for k in unknown[:5])}")
    return data


def read_fields(cls, data, where: str, skip: tuple[str, ...] = (), extra_keys: tuple[str, ...] = ()) -> dict:
    """Constructor arguments for `cls` from a JSON object, every field with a Rule checked.

    Fields in `skip` (nested sections the caller parses) and keys in `extra_keys` are allowed but not
    read. A missing field takes its default; a missing field without default is an error.
    """
    declared = {f.name: f for f in fields(cls) if "rule" in f.metadata}
    check_object(data, where, set(declared) | set(skip) | set(extra_keys))
    out = {}
    for name, f in declared.items():
        if name not in data:
            if f.default is MISSING and f.default_factory is MISSING:
                raise SchemaError(f"{where}.{name}: missing")
            continue
        out[name] = check_value(data[name], f.metadata["rule"], f"{where}.{name}")
    return out


def json_number(value, where: str, lo: float = 0.0, hi: float = 1.0) -> float:
    """A finite real number in [lo, hi] (no range said when both are infinite); a bool is refused (JSON
    true is not a threshold). `where` leads the message: "gate: max_member_spread must be a finite number
    in [0, 1], got nan"."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise SchemaError(f"{where} must be a number, got {type(value).__name__} {value!r}"[:200])
    value = _as_float(value)
    if not math.isfinite(value) or not lo <= value <= hi:
        bounds = f" in [{lo:g}, {hi:g}]" if math.isfinite(lo) or math.isfinite(hi) else ""
        raise SchemaError(f"{where} must be a finite number{bounds}, got {value!r}")
    return value


def json_keys(data, allowed: set[str], required: set[str], what: str, section: str) -> None:
    """`data` is a JSON object with no key outside `allowed` and every key of `required`; the message
    names the section and the object: "gate: fitted[0.99] lacks high"."""
    if not isinstance(data, dict):
        raise SchemaError(f"{section}: {what} must be a JSON object, got {type(data).__name__}")
    unknown = _unknown_keys(data, allowed)
    if unknown:
        raise SchemaError(
            f"{section}: unknown key(s) in {what}: {', '.join(unknown)[:200]}; allowed: {', '.join(sorted(allowed))}"
        )
    missing = required - set(data)
    if missing:
        raise SchemaError(f"{section}: {what} lacks {', '.join(sorted(missing))}")


def _as_float(value: int | float) -> float:
    try:
        return float(value)
    except OverflowError:  # an integer beyond any float: as far out of range as infinity
        return math.inf


class _FreeJson:
    """One walk over free-form JSON, with its node budget."""

    def __init__(self, where: str):
        self.where = where
        self.budget = FREE_JSON_NODES

    def walk(self, v, depth: int, path: str) -> None:
        self.budget -= 1
        if self.budget < 0:
            raise SchemaError(f"{self.where}: more than {FREE_JSON_NODES} values")
        if depth > FREE_JSON_DEPTH:
            raise SchemaError(f"{path}: nested deeper than {FREE_JSON_DEPTH} levels")
        if isinstance(v, list):
            for i, x in enumerate(v):
                self.walk(x, depth + 1, f"{path}[{i}]")
        elif isinstance(v, dict):
            for k, x in v.items():
                if len(k) > MAX_TEXT:
                    raise SchemaError(f"{path}: a key is longer than {MAX_TEXT} characters")
                self.walk(x, depth + 1, f"{path}.{k}")
        else:
            _check_free_leaf(v, path)


def _check_free_leaf(v, path: str) -> None:
    if v is None or isinstance(v, bool):
        return
    if isinstance(v, int):
        if abs(v) > 2**63:
            raise SchemaError(f"{path}: integer out of range")
    elif isinstance(v, float):
        if not math.isfinite(v):
            raise SchemaError(f"{path}: must be a finite number, got {v}")
    elif isinstance(v, str):
        if len(v) > FREE_JSON_TEXT:
            raise SchemaError(f"{path}: longer than {FREE_JSON_TEXT} characters")
    else:
        raise SchemaError(f"{path}: not a JSON value ({type(v).__name__})")


def check_free_json(value, where: str) -> None:
    """Free-form JSON (provenance, metrics): finite numbers, bounded depth, size and strings."""
    if not isinstance(value, dict):
        raise SchemaError(f"{where}: must be an object, got {_show(value)}")
    _FreeJson(where).walk(value, 0, where)


def _show(value) -> str:
    """A short, printable rendering of a bad value for an error message (never a whole document)."""
    if isinstance(value, (dict, list)):
        return f"a {'list' if isinstance(value, list) else 'object'}"
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int) and abs(value) > 10**12:
        return "a huge integer"
    text = repr(value)
    text = "".join(c if c.isprintable() else "?" for c in text)
    return text if len(text) <= 40 else text[:37] + "..."
