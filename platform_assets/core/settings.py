"""Settings: one table per resource of field -> environment variable, and what is derived from it.

Each resource class lists its settings in ``SETTINGS``. From that one table come:
- ``wired(cls)``: the resource for ``Definitions``, secrets as ``EnvVar`` (read when a run starts);
- ``read(cls, env)``: the resource with values read now (tests, the demo, benchmarks);
- ``missing(classes, env)``: the load-time check, naming every required variable that is unset.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from dagster import EnvVar


class ConfigError(RuntimeError):
    """The environment is incomplete, holds a bad value or names an unknown deployment."""


TRUE = frozenset({"1", "true", "yes", "on"})
FALSE = frozenset({"0", "false", "no", "off"})


@dataclass(frozen=True)
class Setting:
    field: str  # the resource's field
    var: str  # the environment variable
    kind: type = str  # str, int or bool
    required: bool = True  # False: left at the field's default when the variable is unset or empty
    secret: bool = True  # True: reaches the resource as EnvVar (never stored in the run config)

    def parse(self, raw: str) -> Any:
        if self.kind is bool:
            value = raw.strip().lower()
            if value not in TRUE | FALSE:
                raise ConfigError(f"{self.var}={raw!r} is not a yes/no value (1/0, true/false)")
            return value in TRUE
        if self.kind is int:
            if not raw.strip().lstrip("-").isdigit():
                raise ConfigError(f"{self.var}={raw!r} is not a whole number")
            return int(raw)
        return raw

    def env_var(self) -> Any:
        return EnvVar.int(self.var) if self.kind is int else EnvVar(self.var)


def settings_of(cls: type) -> tuple[Setting, ...]:
    return tuple(getattr(cls, "SETTINGS", ()))


def _environ(env: Mapping[str, str] | None) -> Mapping[str, str]:
    return os.environ if env is None else env


def wired(cls: type, env: Mapping[str, str] | None = None, **fixed: Any) -> Any:
    """The resource with each required secret as ``EnvVar``; optional ones as ``EnvVar`` when set at
    load time, non-secret ones parsed now (a bad value fails the load, naming the variable)."""
    e = _environ(env)
    kw: dict[str, Any] = {}
    for s in settings_of(cls):
        if not s.required and not e.get(s.var):
            continue
        kw[s.field] = s.env_var() if s.secret else s.parse(e[s.var])
    return cls(**kw, **fixed)


def read(cls: type, env: Mapping[str, str] | None = None, **fixed: Any) -> Any:
    """The resource with every setting's value read now; raises ConfigError naming a missing one."""
    e = _environ(env)
    absent = missing([cls], e)
    if absent:
        raise ConfigError(f"missing environment variables: {', '.join(absent)}")
    kw = {s.field: s.parse(e[s.var]) for s in settings_of(cls) if e.get(s.var)}
    return cls(**kw, **fixed)


def required_vars(classes: Iterable[type]) -> list[str]:
    return list(dict.fromkeys(s.var for cls in classes for s in settings_of(cls) if s.required))


def all_vars(classes: Iterable[type]) -> list[str]:
    return list(dict.fromkeys(s.var for cls in classes for s in settings_of(cls)))


def missing(classes: Iterable[type], env: Mapping[str, str] | None = None) -> list[str]:
    e = _environ(env)
    return [var for var in required_vars(classes) if not e.get(var)]
