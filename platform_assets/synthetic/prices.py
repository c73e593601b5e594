"""Model list prices for the generators, read from the one price list: the dbt seed ``model_prices.csv``.

The seed is versioned: one row per (model, effective_from), a row holding from its day until
the model's next row. The generators price with the rows in effect on a day (today by default),
as ``stg_kafka__spans`` prices a span with the row in effect on the span's day.
"""

from __future__ import annotations

import csv
from dataclasses import dataclass
from datetime import UTC, date, datetime
from functools import cache

from platform_assets.core.paths import price_seed


@dataclass(frozen=True)
class PriceRow:
    """One row of the seed: USD per token from ``effective_from`` (a UTC day) on."""

    model: str
    provider: str
    effective_from: date
    usd_per_input_token: float
    usd_per_cached_input_token: float
    usd_per_output_token: float


@cache
def price_rows() -> tuple[PriceRow, ...]:
    """Every row of the seed, in the seed's order."""
    with price_seed().open(newline="") as fh:
        return tuple(
            PriceRow(
                model=row["model"],
                provider=row["provider"],
                effective_from=date.fromisoformat(row["effective_from"]),
                usd_per_input_token=float(row["usd_per_input_token"]),
                usd_per_cached_input_token=float(row["usd_per_cached_input_token"]),
                usd_per_output_token=float(row["usd_per_output_token"]),
            )
            for row in csv.DictReader(fh)
        )


def price_on(model: str, day: date) -> PriceRow | None:
    """The row of ``model`` with the latest effective_from on or before ``day``; None before its first row."""
    rows = [r for r in price_rows() if r.model == model and r.effective_from <= day]
    return max(rows, key=lambda r: r.effective_from) if rows else None


def model_prices(day: date | None = None) -> dict[str, tuple[str, float, float]]:
    """model -> (provider, USD per input token, USD per output token) in effect on ``day``
    (default: today, UTC), models in the order of their first row in the seed; a model
    whose first row is after ``day`` is left out."""
    on = day or datetime.now(UTC).date()
    out: dict[str, tuple[str, float, float]] = {}
    for model in dict.fromkeys(r.model for r in price_rows()):
        row = price_on(model, on)
        if row is not None:
            out[model] = (row.provider, row.usd_per_input_token, row.usd_per_output_token)
    return out
