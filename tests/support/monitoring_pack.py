"""The metric names the monitoring pack (deploy/) queries, read from its files.

PromQL is scanned, not evaluated: strings, label matchers, ranges, Grafana variables and
`by (...)`-style label lists are removed, and what is left that names something without
calling it is a metric. Enough for the expressions a pack is made of; a test of it is in
tests/unit/test_monitoring_pack.py.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from ruamel.yaml import YAML

REPO = Path(__file__).resolve().parents[2]
ALERT_RULES = REPO / "deploy" / "prometheus" / "alerts.yml"
DASHBOARDS = REPO / "deploy" / "grafana" / "dashboards"

# Series Prometheus writes itself for every target and alert, never on a /metrics page.
PROMETHEUS_OWN_SERIES = frozenset(
    {
        "up",
        "scrape_duration_seconds",
        "scrape_samples_scraped",
        "scrape_samples_post_metric_relabeling",
        "scrape_series_added",
        "ALERTS",
        "ALERTS_FOR_STATE",
    }
)

_KEYWORDS = frozenset(
    {"and", "or", "unless", "bool", "offset", "inf", "nan", "by", "without", "on", "ignoring"}
    | {"group_left", "group_right"}
)
_STRING = re.compile(r""""(?:\\.|[^"\\])*"|'(?:\\.|[^'\\])*'|`[^`]*`""")
_MATCHERS = re.compile(r"\{[^{}]*\}")
_RANGE = re.compile(r"\[[^\[\]]*\]")
_VARIABLE = re.compile(r"\$\{[^}]*\}|\$\w+")
_LABEL_LIST = re.compile(r"\b(?:by|without|on|ignoring|group_left|group_right)\s*\([^()]*\)")
_NAME = re.compile(r"(?<![\w.:])([A-Za-z_:][A-Za-z0-9_:]*)(\s*\()?")


def metric_names(expr: str) -> set[str]:
    """The metric names an expression selects (function and aggregation names left out)."""
    text = _STRING.sub('""', expr)
    for pattern in (_MATCHERS, _RANGE, _VARIABLE, _LABEL_LIST):
        text = pattern.sub(" ", text)
    names = set()
    for match in _NAME.finditer(text):
        name, called = match.groups()
        if not called and name.lower() not in _KEYWORDS:
            names.add(name)
    return names


def rule_expressions(path: Path = ALERT_RULES) -> list[str]:
    """Every `expr` of a Prometheus rules file."""
    loaded: dict[str, Any] = YAML(typ="safe").load(path.read_text())
    return [rule["expr"] for group in loaded["groups"] for rule in group["rules"]]


def dashboard_expressions(folder: Path = DASHBOARDS) -> list[str]:
    """Every query expression of every panel (rows' panels included) of the dashboards."""
    expressions: list[str] = []
    for path in sorted(folder.glob("*.json")):
        for panel in _panels(json.loads(path.read_text())["panels"]):
            expressions += [t["expr"] for t in panel.get("targets", []) if t.get("expr")]
    return expressions


def _panels(panels: list[dict[str, Any]]) -> Iterator[dict[str, Any]]:
    for panel in panels:
        yield panel
        yield from _panels(panel.get("panels", []))


def pack_metric_names() -> set[str]:
    """What the rules and dashboards need from the services' /metrics pages."""
    expressions = rule_expressions() + dashboard_expressions()
    return {name for expr in expressions for name in metric_names(expr)} - PROMETHEUS_OWN_SERIES
