"""Differences between two states of a stream, and between the log's and the read model's."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

# The fields both sides state the same way: what the log folds to vs what the read model holds.
COMPARED_FIELDS = ("status", "version", "total_cents", "customer_id", "balance_cents")


@dataclass(frozen=True)
class Change:
    """One field whose value differs."""

    field: str
    before: Any
    after: Any


def flatten(value: Any, prefix: str = "") -> dict[str, Any]:
    """Nested dicts and lists as dotted keys: {"lines.0.quantity": 2}."""
    if isinstance(value, dict):
        flat: dict[str, Any] = {}
        for key, item in value.items():
            flat.update(flatten(item, f"{prefix}{key}."))
        return flat
    if isinstance(value, list):
        flat = {}
        for i, item in enumerate(value):
            flat.update(flatten(item, f"{prefix}{i}."))
        return flat
    return {prefix.rstrip("."): value}


def diff(before: dict[str, Any], after: dict[str, Any]) -> list[Change]:
    """Every dotted field that differs, in name order."""
    old, new = flatten(before), flatten(after)
    return [
        Change(name, old.get(name), new.get(name))
        for name in sorted(old.keys() | new.keys())
        if old.get(name) != new.get(name)
    ]


def disagreements(log_state: dict[str, Any], read_view: dict[str, Any]) -> list[Change]:
    """The compared fields that both sides have and state differently."""
    return [
        Change(name, log_state[name], read_view[name])
        for name in COMPARED_FIELDS
        if name in log_state and name in read_view and log_state[name] != read_view[name]
    ]
