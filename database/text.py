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

from sqlalchemy import text


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

