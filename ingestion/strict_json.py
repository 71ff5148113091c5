"""JSON from outside, read strictly: what `json.loads` would silently accept is an error here.

Partner files (JSON lines) and the marketing API's answers both come from parties we do not
control. `json.loads` keeps the last of two equal keys (so a record can say two things at once),
reads `NaN`/`Infinity` and turns `1e999` into infinity; each would slip a wrong value past the
contract checks. `loads` refuses all of them with a ValueError that says which, and a document
nested so deeply that the parser would exhaust the stack.
"""

from __future__ import annotations

import json
import math
from typing import Any


def unique_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in pairs:
        if key in out:
            raise ValueError(f"key {key[:40]!r} appears twice in one object")
        out[key] = value
    return out


def no_constants(name: str) -> Any:
    raise ValueError(f"{name} is not a JSON number")


def finite_float(text: str) -> float:
    value = float(text)
    if math.isinf(value):
        raise ValueError(f"number {text[:40]} is out of range")
    return value


def loads(document: str | bytes) -> Any:
    """json.loads refusing duplicate keys, NaN/Infinity, overflowing numbers and runaway nesting."""
    try:
        return json.loads(
            document, object_pairs_hook=unique_keys, parse_float=finite_float, parse_constant=no_constants
        )
    except RecursionError:
        raise ValueError("nested too deeply to parse") from None
