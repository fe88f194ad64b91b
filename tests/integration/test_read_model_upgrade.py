"""A read model made before a column existed keeps working: schema creation adds the nullable
columns it lacks (the history's `by_*`), on SQLite and PostgreSQL.
"""

from __future__ import annotations

from dataclasses import replace

import pytest
from sqlalchemy import Column, Engine, Integer, MetaData, String, Table, inspect, text

from query_service.read_model.tables import create_read_model_schema
from query_service.read_model.views import ReadViews
from shared.infra.db import create_tables
from shared.infra.schema_columns import MissingRequiredColumn
from tests.integration.query_support import OrderEventLog, project_directly

BY_COLUMNS = ("by_sub", "by_iss", "by_customer_id", "by_client_id")
PRINCIPAL = {"sub": "user-7", "iss": "urn:idp", "customer_id": "c-1", "jti": "t-1"}


def _history_columns(engine: Engine) -> list[str]:
    return [column["name"] for column in inspect(engine).get_columns("order_history")]


def test_an_old_read_model_gains_the_history_columns_and_keeps_its_rows(
    read_model_engine: Engine,
) -> None:
    engine = read_model_engine
    log = OrderEventLog()
    placed = log.place("o-1", "c-1", [("apple", 1, 250)])
    paid = replace(
        log.change("o-1", "PAID"), metadata={"correlation_id": "x", "principal": PRINCIPAL}
    )
    project_directly(engine, [placed])
    # The file as the release before wrote it: no by_* columns.
    with engine.begin() as conn:
        for name in BY_COLUMNS:
            conn.execute(text(f"ALTER TABLE order_history DROP COLUMN {name}"))
    assert not set(BY_COLUMNS) & set(_history_columns(engine))

    create_read_model_schema(engine)
    create_read_model_schema(engine)  # and again: nothing left to add
    project_directly(engine, [paid])

    assert _history_columns(engine)[-4:] == list(BY_COLUMNS)
    history = ReadViews(engine).history("o-1")
    assert [(row["version"], row["by_sub"], row["by_customer_id"]) for row in history] == [
        (1, None, None),
        (2, "user-7", "c-1"),
    ]


@pytest.mark.parametrize("backend", ["sqlite"], indirect=True)
def test_a_missing_not_null_column_is_refused_with_its_name(read_model_engine: Engine) -> None:
    old, new = MetaData(), MetaData()
    Table("upgrade_probe", old, Column("id", Integer, primary_key=True))
    Table(
        "upgrade_probe",
        new,
        Column("id", Integer, primary_key=True),
        Column("note", String(10)),
        Column("required", Integer, nullable=False),
    )
    create_tables(read_model_engine, old)

    with pytest.raises(MissingRequiredColumn, match="upgrade_probe lacks the NOT NULL column"):
        create_tables(read_model_engine, new)
    # All or nothing: the nullable column was not added either.
    assert [c["name"] for c in inspect(read_model_engine).get_columns("upgrade_probe")] == ["id"]
