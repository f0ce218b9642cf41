"""One place for every artifact's schema: table column schemas and JSON document schemas, with versions."""

from apexctl.schemas.tables import (
    BARS,
    BOOK,
    EQUITY,
    FEATURES,
    FILLS,
    GENERATIONS,
    PARETO,
    TABLES,
    TRADES,
    Column,
    TableSchema,
)

__all__ = [
    "BARS",
    "BOOK",
    "EQUITY",
    "FEATURES",
    "FILLS",
    "GENERATIONS",
    "PARETO",
    "TABLES",
    "TRADES",
    "Column",
    "TableSchema",
]
