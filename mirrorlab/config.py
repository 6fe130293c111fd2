"""Typed dataclass configs from files and flags: an unknown key or a wrong type is one clear error.

Each command has one frozen dataclass holding every default; the study's is a tree of them, one branch
per stage. A config file (TOML or JSON) may set any subset of its fields, a branch's as a table
(`[train]` in TOML, an object in JSON); flags are validated the same way, before any work starts.
"""

from __future__ import annotations

import dataclasses
import tomllib
import types
import typing
from pathlib import Path
from typing import Any, TypeVar

from mirrorlab.errors import UserError
from mirrorlab.records import MAX_JSON_DEPTH, json_depth, parse_json, read_text

C = TypeVar("C")


def _type_name(tp: Any) -> str:
    origin = typing.get_origin(tp)
    if origin is tuple:
        return f"list of {_type_name(typing.get_args(tp)[0])}"
    if origin in (typing.Union, types.UnionType):
        return " or ".join(_type_name(a) for a in typing.get_args(tp))
    if tp is type(None):
        return "null"
    return getattr(tp, "__name__", str(tp))


def coerce(value: Any, tp: Any, where: str) -> Any:
    """Check `value` against a field type (bool, int, float, str, tuple[X, ...], Optional); return it typed."""
    origin = typing.get_origin(tp)
    if origin in (typing.Union, types.UnionType):
        for arg in typing.get_args(tp):
            try:
                return coerce(value, arg, where)
            except UserError:
                continue
        raise UserError(f"{where}: expected {_type_name(tp)}, got {value!r}")
    if tp is type(None):
        if value is None:
            return None
        raise UserError(f"{where}: expected null, got {value!r}")
    if origin is tuple:
        if not isinstance(value, (list, tuple)):
            raise UserError(f"{where}: expected a list, got {value!r}")
        (item_tp, *_rest) = typing.get_args(tp)
        return tuple(coerce(v, item_tp, f"{where}[{i}]") for i, v in enumerate(value))
    if tp is bool:
        if isinstance(value, bool):
            return value
    elif tp is int:
        if isinstance(value, int) and not isinstance(value, bool):
            return value
    elif tp is float:
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return float(value)
    elif tp is str:
        if isinstance(value, str):
            return value
    else:
        raise TypeError(f"{where}: unsupported config field type {tp!r}")
    raise UserError(f"{where}: expected {_type_name(tp)}, got {value!r}")


def replace_checked(config: C, updates: dict[str, Any], source: str, prefix: str = "") -> C:
    """`dataclasses.replace` that names an unknown key or a mistyped value (by its dotted path under `prefix`
    in a config tree); a field holding a config (a branch) takes a mapping of that config's keys."""
    hints = typing.get_type_hints(type(config))
    names = [f.name for f in dataclasses.fields(config)]
    unknown = [k for k in updates if k not in names]
    if unknown:
        raise UserError(f"{source}: unknown key {prefix + unknown[0]!r}; valid keys: {', '.join(names)}")
    typed = {}
    for key, value in updates.items():
        branch = branch_type(hints[key])
        if branch is None:
            typed[key] = coerce(value, hints[key], f"{source}: {prefix}{key}")
        else:
            typed[key] = _replace_branch(getattr(config, key), branch, hints[key], value, source, f"{prefix}{key}")
    return dataclasses.replace(config, **typed)


def branch_type(tp: Any) -> type | None:
    """The config class a field holds (`X` or `X | None` for a dataclass X), else None."""
    args = typing.get_args(tp) if typing.get_origin(tp) in (typing.Union, types.UnionType) else (tp,)
    classes = [a for a in args if dataclasses.is_dataclass(a)]
    return classes[0] if classes else None


def _replace_branch(current: Any, branch: type, tp: Any, value: Any, source: str, key: str) -> Any:
    """A branch updated from a mapping of its keys. A stage that may be skipped (`X | None`) also takes
    false or null (skip it) or true (run it: its current config, or the defaults if it was skipped), as TOML has
    no null."""
    optional = type(None) in typing.get_args(tp)
    if isinstance(value, dict):
        return replace_checked(current if current is not None else branch(), value, source, f"{key}.")
    if optional and value is None:  # JSON's null
        return None
    if optional and isinstance(value, bool):
        return (current if current is not None else branch()) if value else None
    expected = "a table of its keys" + (", or false to skip the stage" if optional else "")
    raise UserError(f"{source}: {key}: expected {expected}, got {value!r}")


def read_config_file(path: str | Path) -> dict[str, Any]:
    """The mapping of config keys in a .toml or .json file (size and nesting limited as every JSON the tool reads)."""
    path = Path(path)
    label = f"config file {path}"
    if not path.is_file():
        raise UserError(f"config file {path} does not exist")
    if path.suffix not in (".toml", ".json"):
        raise UserError(f"config file {path}: expected a .toml or .json file")
    text = read_text(path, label)
    if path.suffix == ".json":
        data = parse_json(text, label)
    else:
        if json_depth(text) > MAX_JSON_DEPTH:  # brackets nest the same way in TOML's arrays and inline tables
            raise UserError(f"{label}: nested more than {MAX_JSON_DEPTH} levels deep; not a config")
        try:
            data = tomllib.loads(text)
        except (tomllib.TOMLDecodeError, RecursionError) as err:
            raise UserError(f"{label}: not valid TOML: {err}") from None
    if not isinstance(data, dict):
        raise UserError(f"{label}: expected a mapping of config keys at the top level")
    return data


def parse_int_list(text: str, what: str) -> tuple[int, ...]:
    """'42,1,2' -> (42, 1, 2); anything else names the flag."""
    try:
        values = tuple(int(v) for v in text.split(","))
    except ValueError:
        raise UserError(f"{what}: expected comma-separated integers such as 42,1,2, got {text!r}") from None
    if not values:
        raise UserError(f"{what}: expected at least one integer")
    return values


def build_config(base: C, config_file: str | None, flags: dict[str, Any]) -> C:
    """Defaults <- a config file <- command-line flags (those left None are not given), each layer
    checked by name and type, then the config's own `validate()`: every command builds its config so."""
    config = base
    if config_file:
        config = replace_checked(config, read_config_file(config_file), f"config file {config_file}")
    config = replace_checked(config, {k: v for k, v in flags.items() if v is not None}, "flags")
    validate = getattr(config, "validate", None)
    if validate is not None:
        validate()
    return config
