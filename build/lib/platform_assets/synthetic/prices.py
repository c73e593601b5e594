"""Model list prices for the generators, read from the one price list: the dbt seed ``model_prices.csv``."""

from __future__ import annotations

import csv
from functools import cache

from platform_assets.core.paths import price_seed


@cache
def model_prices() -> dict[str, tuple[str, float, float]]:
    """model -> (provider, USD per input token, USD per output token), in the seed's order."""
    with price_seed().open(newline="") as fh:
        return {
            row["model"]: (row["provider"], float(row["usd_per_input_token"]), float(row["usd_per_output_token"]))
            for row in csv.DictReader(fh)
        }
