"""The CSV form of any series (`format=csv`): RFC 4180, UTF-8, a header row of column names."""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable, Mapping, Sequence

from litestar import Response


def _cell(value: object) -> object:
    # None is an empty cell; booleans and numbers as Python writes them.
    return "" if value is None else value


def csv_response(columns: Sequence[str], rows: Iterable[Mapping[str, object]],
                 filename: str) -> Response[bytes]:
    """A `text/csv; charset=utf-8` attachment named `filename`: the header row `columns`,
    then each row's values in that order (a missing value or None: an empty cell), lines
    ended by CRLF. Called by every analytics route asked for `format=csv`."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(columns)
    for row in rows:
        writer.writerow([_cell(row.get(name)) for name in columns])
    # Litestar adds `; charset=utf-8` to a text media type itself.
    return Response(out.getvalue().encode(), media_type="text/csv",
                    headers={"Content-Disposition": f'attachment; filename="{filename}"'})
