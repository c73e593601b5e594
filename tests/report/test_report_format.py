"""How the report writes its figures and their change from the day before (no servers)."""

from __future__ import annotations

from datetime import date, timedelta

import pytest

from platform_assets.report.data import KPIS, ReportData
from platform_assets.report.render import format_change, format_value, render_html

pytestmark = pytest.mark.unit


def test_values_by_kind():
    assert format_value(1234, "count") == "1,234"
    assert format_value(0.0923, "rate") == "9.23%"
    assert format_value(1234.5, "usd") == "$1,234.50"
    assert format_value(None, "usd") == "\u2013"


def test_change_says_good_or_bad_news_not_the_sign():
    assert format_change("dau", 50, 40, "count") == ("+10 (+25.0%) vs previous day", "good")
    assert format_change("net_revenue_usd", 32.5, 35.0, "usd") == ("-$2.50 (-7.1%) vs previous day", "bad")
    assert format_change("call_error_rate", 0.10, 0.05, "rate") == ("+5.00 pp vs previous day", "bad")
    assert format_change("trace_error_rate", 0.05, 0.10, "rate") == ("-5.00 pp vs previous day", "good")
    assert format_change("orders", 3, 0, "count") == ("+3 vs previous day", "good")
    assert format_change("orders", 3, None, "count") == ("no figure the day before", "flat")
    assert format_change("orders", None, 3, "count") == ("", "flat")


def test_all_zero_day_is_a_no_data_page():
    day = date(2026, 3, 1)
    daily = [{"day": day - timedelta(days=1), **dict.fromkeys(KPIS)}, {"day": day, **dict.fromkeys(KPIS, 0)}]
    data = ReportData(day=day, daily=daily)
    assert not data.has_data
    assert 'id="no-data"' in render_html(data, [])
