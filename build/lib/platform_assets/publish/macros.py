"""Expands the ClickHouse plugin's macros and the dashboard variables, the way Grafana would,
so the panel check can run a panel's SQL as the plugin sends it.

Covered (the plugin's documented forms): ``$__timeFilter(col)``, ``$__dateFilter(col)``,
``$__fromTime``, ``$__toTime``, ``$__timeInterval(col)``; variables as ``${name:sqlstring}``,
``${name}`` and ``$name``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta


@dataclass(frozen=True)
class TimeRange:
    start: datetime
    end: datetime

    @classmethod
    def last(cls, days: int, now: datetime | None = None) -> TimeRange:
        end = now or datetime.now(UTC)
        return cls(end - timedelta(days=days), end)

    @property
    def interval_seconds(self) -> int:
        """Grafana's $__interval for ~1000 points, at least a minute (the finest mart grain)."""
        return max(60, int((self.end - self.start).total_seconds() // 1000))


@dataclass(frozen=True)
class Expansion:
    time_range: TimeRange
    variables: dict[str, str] = field(default_factory=dict)


class MacroError(ValueError):
    """A macro or variable the expander does not know: the panel would not run in Grafana either."""


def _sqlstring(value: str) -> str:
    return "'" + value.replace("\\", "\\\\").replace("'", "\\'") + "'"


def expand(sql: str, exp: Expansion) -> str:
    frm, to = int(exp.time_range.start.timestamp()), int(exp.time_range.end.timestamp())
    d_frm, d_to = exp.time_range.start.date().isoformat(), exp.time_range.end.date().isoformat()
    out = re.sub(
        r"\$__timeFilter\(([^)]+)\)",
        lambda m: f"{m[1]} >= toDateTime({frm}) AND {m[1]} <= toDateTime({to})",
        sql,
    )
    out = re.sub(
        r"\$__dateFilter\(([^)]+)\)",
        lambda m: f"{m[1]} >= toDate('{d_frm}') AND {m[1]} <= toDate('{d_to}')",
        out,
    )
    out = re.sub(
        r"\$__timeInterval\(([^)]+)\)",
        lambda m: f"toStartOfInterval(toDateTime({m[1]}), INTERVAL {exp.time_range.interval_seconds} second)",
        out,
    )
    out = out.replace("$__fromTime", f"toDateTime({frm})").replace("$__toTime", f"toDateTime({to})")

    def variable(m: re.Match[str]) -> str:
        name, fmt = m["name"] or m["bare"], m["fmt"]
        if name not in exp.variables:
            raise MacroError(f"unknown variable ${name}")
        value = exp.variables[name]
        if fmt in (None, "raw"):
            return value
        if fmt == "sqlstring":
            return _sqlstring(value)
        raise MacroError(f"unsupported variable format :{fmt}")

    out = re.sub(r"\$\{(?P<name>\w+)(?::(?P<fmt>\w+))?\}|\$(?P<bare>[A-Za-z]\w*)", variable, out)
    if "$__" in out:
        raise MacroError(f"unexpanded macro in: {out[out.index('$__') :][:40]}")
    return out
