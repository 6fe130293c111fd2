"""JSON from files of others: read with size and nesting limits into checked records, one line on any defect.

Folders are shared between colleagues, so every JSON file the tool reads (configs, manifests, run
records, policy descriptions, activations metadata) may be hostile: 200k nested brackets (a
RecursionError in Python's parser), non-UTF-8 bytes, gigabytes, a list where an object belongs, a
missing key. `read_json(path, what, schema)` turns each into one `UserError` naming the file and the
key. Below `files` and `config` (both read JSON through it); it imports only `errors`.
"""

from __future__ import annotations

import json
import os
import re
from pathlib import Path
from typing import Any, Mapping

import numpy as np

from mirrorlab.errors import UserError

# Limits of the JSON files the tool reads: its own are far smaller (a manifest of 10^5 episodes is ~10 MB).
MAX_JSON_BYTES = 256 << 20
MAX_JSON_DEPTH = 64
_JSON_STRING = re.compile(r'"(?:[^"\\]|\\.)*"')


def json_depth(text: str) -> int:
    """How deeply brackets nest in JSON text (strings skipped), counted without recursion, so a file of
    200k nested brackets is measured, not followed into a RecursionError."""
    skeleton = np.frombuffer(_JSON_STRING.sub("", text).encode("utf-8"), np.uint8)
    steps = np.isin(skeleton, (ord("["), ord("{"))).astype(np.int64) - np.isin(skeleton, (ord("]"), ord("}")))
    return int(np.cumsum(steps).max(initial=0))


def parse_json(text: str, label: str) -> Any:
    """JSON text (from a file, an HDF5 attribute, an .npz member) parsed within `MAX_JSON_DEPTH`."""
    if json_depth(text) > MAX_JSON_DEPTH:
        raise UserError(f"{label}: JSON nested more than {MAX_JSON_DEPTH} levels deep; not a file mirrorlab wrote")
    try:
        return json.loads(text)
    except (json.JSONDecodeError, RecursionError, ValueError) as err:
        raise UserError(f"{label}: not readable JSON ({type(err).__name__}: {err}); restore or regenerate it"
                        ) from None


def read_text(path: str | os.PathLike, label: str, max_bytes: int | None = None) -> str:
    """A UTF-8 text file of at most `max_bytes` (default `MAX_JSON_BYTES`), every failure one line naming it."""
    path = Path(path)
    max_bytes = MAX_JSON_BYTES if max_bytes is None else max_bytes
    try:
        size = path.stat().st_size
        if size > max_bytes:
            raise UserError(f"{label}: {size} bytes, more than the {max_bytes} this file may hold; not a file "
                            "mirrorlab wrote")
        return path.read_bytes().decode("utf-8")
    except FileNotFoundError:
        raise UserError(f"{label}: not found") from None
    except UnicodeDecodeError as err:
        raise UserError(f"{label}: not UTF-8 text (byte {err.start}); restore or regenerate it") from None
    except OSError as err:
        raise UserError(f"{label}: not readable ({err.strerror or err})") from None


def read_json(path: str | os.PathLike, what: str = "", schema: Mapping[str, Any] | None = None) -> Any:
    """A JSON file within the size and depth limits; with `schema`, an object checked by `check_record`."""
    label = f"{what} {Path(path)}".strip()
    data = parse_json(read_text(path, label), label)
    return data if schema is None else check_record(data, schema, label)


def _type_name(types: Any) -> str:
    names = {bool: "true or false", int: "an integer", float: "a number", str: "a string", list: "a list",
             dict: "an object", type(None): "null"}
    return " or ".join(names.get(t, t.__name__) for t in (types if isinstance(types, tuple) else (types,)))


def is_json_type(value: Any, types: Any) -> bool:
    """isinstance for JSON values, where an integer is a number but true is neither."""
    types = types if isinstance(types, tuple) else (types,)
    if isinstance(value, bool):
        return bool in types
    if float in types and isinstance(value, int):
        return True
    return isinstance(value, types)


def check_value(value: Any, types: Any, label: str) -> Any:
    if not is_json_type(value, types):
        raise UserError(f"{label}: expected {_type_name(types)}, got {type(value).__name__} {str(value)[:60]!r}")
    return value


def check_record(data: Any, schema: Mapping[str, Any], label: str) -> dict[str, Any]:
    """`data` must be an object holding every key of `schema` with a value of its type(s): one line naming
    the file and key otherwise. Keys beyond the schema are left to the reader."""
    check_value(data, dict, label)
    for key, types in schema.items():
        if key not in data:
            raise UserError(f"{label}: missing key {key!r}")
        check_value(data[key], types, f"{label}: key {key!r}")
    return data
