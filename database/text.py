"""Text as a search compares it: accents, case and spacing set aside.

`fold("Zoë  Étienne")` is `"zoe etienne"`: Unicode's compatibility decomposition (NFKD)
splits each accented letter into its base letter and a combining mark, the marks are
dropped, and `casefold` lowers the rest (ß becomes ss). The same function folds what is
stored (`User.search_text`, `Contract.search_text`) and what is searched for, so both
databases compare the very same strings: no database's own idea of accents or case.
"""

from __future__ import annotations

import unicodedata
from typing import Any

from sqlalchemy import String, literal_column, text
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.sql.functions import FunctionElement


def fold(text: str) -> str:
    """`text` lower-cased, without accents, its runs of spaces made one."""
    decomposed = unicodedata.normalize("NFKD", text)
    bare = "".join(char for char in decomposed if not unicodedata.combining(char))
    return " ".join(bare.casefold().split())


def trigram_index_kwargs(column: str) -> dict[str, Any]:
    """The keyword arguments of an `Index` that finds any part of `column`'s text.

    On PostgreSQL a GIN index of the column's trigrams (pg_trgm), which serves
    `LIKE '%part%'` and `ILIKE`. SQLite has no such index: a B-tree cannot find a
    middle part, so there the index is left empty (`WHERE 0`) and a search reads the
    table, which at SQLite's sizes takes a few milliseconds.
    """
    return {
        "postgresql_using": "gin",
        "postgresql_ops": {column: "gin_trgm_ops"},
        "sqlite_where": text("0"),
    }



class Ending(FunctionElement[str]):
    """The last `length` characters of a text column, in either database's words: the
    printed reference of a payment is the end of its Stripe id, and an index of this
    expression finds a quoted reference in one look-up."""

    type = String()
    inherit_cache = True

    def __init__(self, column: Any, length: int) -> None:
        super().__init__(column, literal_column(str(int(length))))


@compiles(Ending)
def _ending_sqlite(element: Ending, compiler: Any, **kw: Any) -> str:
    column, length = element.clauses
    return f"substr({compiler.process(column, **kw)}, -{compiler.process(length, **kw)})"


@compiles(Ending, "postgresql")
def _ending_postgresql(element: Ending, compiler: Any, **kw: Any) -> str:
    column, length = element.clauses
    return f"right({compiler.process(column, **kw)}, {compiler.process(length, **kw)})"
