"""``--set`` overrides of a scenario: a dotted key and a TOML value, applied to the raw
scenario data before it is validated (:func:`load_with`), so an override is checked like
the file itself."""

from __future__ import annotations

import tomllib
from typing import Any

from simulations.scenario import (
    Scenario,
    ScenarioError,
    closest,
    parse_data,
    scenario_path,
    toml_data,
)


def set_key(data: dict[str, Any], dotted: str, value: Any) -> None:
    """Override ``a.b.0.c`` (list items by index) in raw scenario data."""
    parts = dotted.split(".")
    node: Any = data
    for i, part in enumerate(parts):
        last = i == len(parts) - 1
        if isinstance(node, list):
            if not part.isdigit() or int(part) >= len(node):
                raise ScenarioError(f"{dotted}: no item {part} in that list")
            if last:
                node[int(part)] = value
            else:
                node = node[int(part)]
        elif isinstance(node, dict):
            if last:
                node[part] = value
            elif part not in node:
                raise ScenarioError(f"{dotted}: no key {part!r}; {closest(part, node)}")
            else:
                node = node[part]
        else:
            raise ScenarioError(f"{dotted}: {part!r} is not a table or list")


def parse_override(spec: str) -> tuple[str, Any]:
    """``--set key=value``; the value is read as TOML (``[0, 0, 10, 10]`` is a list, a bare
    word a string)."""
    key, raw = _split_override(spec, "key=value")
    return key, _toml_value(raw)


def parse_override_values(spec: str) -> tuple[str, list[Any]]:
    """``--set key=v1,v2`` (``sim sweep``): the key and its values, each read as TOML."""
    key, raw = _split_override(spec, "key=value1,value2")
    return key, [_toml_value(item) for item in raw.split(",")]


def _split_override(spec: str, form: str) -> tuple[str, str]:
    if "=" not in spec:
        raise ScenarioError(f"--set {spec!r}: expected {form}")
    key, raw = spec.split("=", 1)
    return key.strip(), raw


def _toml_value(raw: str) -> Any:
    try:
        return tomllib.loads(f"v = {raw}")["v"]
    except tomllib.TOMLDecodeError:
        return raw  # a bare word: a string


def load_with(name_or_path: str, overrides: dict[str, Any]) -> Scenario:
    path = scenario_path(name_or_path)
    data = toml_data(path.read_text())
    for key, value in overrides.items():
        set_key(data, key, value)
    return parse_data(data, str(path))
