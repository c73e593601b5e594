"""Pure DDL helpers: splitting, discovery, planning."""

from __future__ import annotations

import pytest

from platform_assets.core.sql import SqlError, split_statements
from platform_assets.ops.ddl import DDL_DIR, DdlError, DdlFile, discover, plan

pytestmark = pytest.mark.unit


def test_split_ignores_semicolons_in_strings_comments_and_identifiers():
    sql = """
    -- a comment; with a semicolon and a quote '
    CREATE TABLE a (s String DEFAULT 'x;y') ENGINE = Memory;
    /* block; comment */
    CREATE TABLE `we;ird` (v String COMMENT 'it\\'s; fine') ENGINE = Memory;
    SELECT "col;umn" FROM a
    """
    assert split_statements(sql) == [
        "CREATE TABLE a (s String DEFAULT 'x;y') ENGINE = Memory",
        "CREATE TABLE `we;ird` (v String COMMENT 'it\\'s; fine') ENGINE = Memory",
        'SELECT "col;umn" FROM a',
    ]


def test_split_rejects_unterminated_quote():
    with pytest.raises(SqlError, match="unterminated"):
        split_statements("SELECT 'oops")


def test_comment_only_file_has_no_statements():
    assert split_statements("-- nothing here\n/* nor here */\n;\n") == []


def test_discover_orders_files_and_rejects_bad_names(tmp_path):
    (tmp_path / "002_b.sql").write_text("SELECT 2")
    (tmp_path / "001_a.sql").write_text("SELECT 1")
    assert [f.name for f in discover(tmp_path)] == ["001_a.sql", "002_b.sql"]
    (tmp_path / "3_bad.sql").write_text("SELECT 3")
    with pytest.raises(DdlError, match=r"3_bad\.sql: DDL files must be named"):
        discover(tmp_path)


def test_discover_rejects_duplicate_numbers(tmp_path):
    (tmp_path / "001_a.sql").write_text("SELECT 1")
    (tmp_path / "001_b.sql").write_text("SELECT 1")
    with pytest.raises(DdlError, match="share the number"):
        discover(tmp_path)


def _file(name: str, checksum: str) -> DdlFile:
    return DdlFile(name, DDL_DIR / name, checksum)


def test_plan_applies_only_new_files():
    files = [_file("001_a.sql", "aaa"), _file("002_b.sql", "bbb")]
    result = plan(files, {"001_a.sql": "aaa", "000_gone.sql": "zzz"})
    assert [f.name for f in result.to_apply] == ["002_b.sql"]
    assert [f.name for f in result.unchanged] == ["001_a.sql"]
    assert result.applied_but_missing == ["000_gone.sql"]


def test_plan_refuses_edited_applied_file_by_name():
    files = [_file("001_a.sql", "a" * 64)]
    with pytest.raises(DdlError, match=r"001_a\.sql: applied sha256 bbbbbbbbbbbb\.\.\., file now aaaaaaaaaaaa"):
        plan(files, {"001_a.sql": "b" * 64})


def test_repo_ddl_is_well_formed():
    files = discover(DDL_DIR)
    assert files, "clickhouse_ddl/ has no files"
    for ddl in files:
        for statement in ddl.statements:
            upper = statement.upper()
            dropped = upper.startswith("DROP") and " IF EXISTS " in upper
            assert "IF NOT EXISTS" in upper or upper.startswith("ALTER") or dropped, (
                f"{ddl.name}: statement is not idempotent: {statement[:80]}"
            )
