"""The generators price LLM calls from the one price list, the dbt seed."""

from __future__ import annotations

import csv

import pytest

from platform_assets.core.paths import price_seed
from platform_assets.synthetic import agents, history_agents
from platform_assets.synthetic.prices import model_prices

pytestmark = pytest.mark.unit


def test_generators_use_every_row_of_the_seed():
    with price_seed().open() as fh:
        rows = list(csv.DictReader(fh))
    assert [r["model"] for r in rows] == list(model_prices())
    assert model_prices() == history_agents.MODELS
    assert [m[0] for m in agents.MODELS] == [r["model"] for r in rows]
    for row, (model, provider, cin, cout) in zip(rows, agents.MODELS, strict=True):
        assert (model, provider) == (row["model"], row["provider"])
        assert cin == float(row["usd_per_input_token"]) > 0
        assert cout == float(row["usd_per_output_token"]) > 0
