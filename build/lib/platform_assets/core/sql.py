"""SQL files: loading the ones that sit beside the code that runs them, and splitting scripts."""

from __future__ import annotations

from functools import cache
from pathlib import Path


class SqlError(ValueError):
    """A SQL script cannot be split (an unterminated quote)."""


@cache
def load(module_file: str, name: str) -> str:
    """The text of ``sql/<name>`` beside ``module_file`` (pass ``__file__``)."""
    return (Path(module_file).parent / "sql" / name).read_text()


def split_statements(sql: str) -> list[str]:
    """Split on ``;`` outside quotes, backticks and comments; drop comment-only pieces."""
    statements: list[str] = []
    buf: list[str] = []
    i, n = 0, len(sql)
    quote: str | None = None
    while i < n:
        ch = sql[i]
        if quote:
            buf.append(ch)
            if ch == "\\" and i + 1 < n:
                buf.append(sql[i + 1])
                i += 2
                continue
            if ch == quote:
                quote = None
        elif ch in "'\"`":
            quote = ch
            buf.append(ch)
        elif sql.startswith("--", i):
            end = sql.find("\n", i)
            i = n if end == -1 else end
            continue
        elif sql.startswith("/*", i):
            end = sql.find("*/", i + 2)
            i = n if end == -1 else end + 2
            continue
        elif ch == ";":
            statements.append("".join(buf).strip())
            buf = []
        else:
            buf.append(ch)
        i += 1
    if quote:
        raise SqlError(f"unterminated {quote} quote in SQL")
    statements.append("".join(buf).strip())
    return [s for s in statements if s]
