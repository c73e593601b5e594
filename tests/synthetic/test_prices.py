"""The generators price LLM calls from the one price list, the dbt seed, with its versions."""

from __future__ import annotations

import csv
from datetime import UTC, date, datetime, timedelta

import pytest

from platform_assets.core.paths import price_seed
from platform_assets.synthetic import agents, history_agents
from platform_assets.synthetic.prices import model_prices, price_on, price_rows

pytestmark = pytest.mark.unit


def seed_rows() -> list[dict[str, str]]:
    with price_seed().open(newline="") as fh:
        return list(csv.DictReader(fh))


def current(rows: list[dict[str, str]], model: str, day: date) -> dict[str, str]:
    """The seed row of ``model`` in effect on ``day``, found without the module under test."""
    return max(
        (r for r in rows if r["model"] == model and date.fromisoformat(r["effective_from"]) <= day),
        key=lambda r: r["effective_from"],
    )


def test_the_seed_is_one_row_per_model_and_day_with_every_price():
    rows = seed_rows()
    assert list(rows[0]) == [
        "model", "provider", "effective_from",
        "usd_per_input_token", "usd_per_cached_input_token", "usd_per_output_token",
    ]  # fmt: skip
    keys = [(r["model"], r["effective_from"]) for r in rows]
    assert len(keys) == len(set(keys))
    models = [m for m, _ in keys]
    assert any(models.count(m) > 1 for m in models), "no model has versions"
    for r in rows:
        date.fromisoformat(r["effective_from"])
        cin, cached, cout = (
            float(r[c]) for c in ("usd_per_input_token", "usd_per_cached_input_token", "usd_per_output_token")
        )
        assert 0 < cached <= cin and cout > 0, r


def test_generators_use_the_prices_in_effect_today():
    rows = seed_rows()
    today = datetime.now(UTC).date()
    models = list(dict.fromkeys(r["model"] for r in rows))
    assert list(model_prices()) == models
    assert model_prices() == history_agents.MODELS
    assert [m[0] for m in agents.MODELS] == models
    for model, provider, cin, cout in agents.MODELS:
        row = current(rows, model, today)
        assert (provider, cin, cout) == (
            row["provider"],
            float(row["usd_per_input_token"]),
            float(row["usd_per_output_token"]),
        )


def test_a_price_holds_from_its_day_until_the_next_row_of_the_model():
    models = [r.model for r in price_rows()]
    versioned = next(m for m in models if models.count(m) > 1)
    first, second = sorted((r for r in price_rows() if r.model == versioned), key=lambda r: r.effective_from)[:2]
    assert price_on(versioned, first.effective_from - timedelta(days=1)) is None
    assert price_on(versioned, first.effective_from) == first
    assert price_on(versioned, second.effective_from - timedelta(days=1)) == first
    assert price_on(versioned, second.effective_from) == second
    assert versioned not in model_prices(first.effective_from - timedelta(days=1))
    assert model_prices(first.effective_from)[versioned][1:] == (first.usd_per_input_token, first.usd_per_output_token)
    assert price_on("no-such-model", date(2100, 1, 1)) is None
