"""Bringing an older database's tables up to the code's: add the nullable columns they lack."""

from __future__ import annotations

from sqlalchemy import Connection, MetaData, inspect, text


class MissingRequiredColumn(RuntimeError):
    """A table lacks a NOT NULL column: its rows have no value for it, so no ALTER can add it."""


def add_missing_columns(conn: Connection, metadata: MetaData) -> None:
    """ALTER TABLE .. ADD COLUMN for every nullable column of `metadata` a table lacks."""
    # Run by create_tables under its schema lock, so two processes never add one column twice.
    inspector = inspect(conn)
    preparer = conn.dialect.identifier_preparer
    for table in metadata.sorted_tables:
        present = {column["name"] for column in inspector.get_columns(table.name)}
        for column in table.columns:
            if column.name in present:
                continue
            if not column.nullable:
                raise MissingRequiredColumn(
                    f"table {table.name} lacks the NOT NULL column {column.name}: "
                    "migrate it by hand (or rebuild the database)"
                )
            column_type = column.type.compile(dialect=conn.dialect)
            conn.execute(
                text(
                    f"ALTER TABLE {preparer.format_table(table)} "
                    f"ADD COLUMN {preparer.format_column(column)} {column_type}"
                )
            )
