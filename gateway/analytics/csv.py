"""One CSV rendering for every report that offers `format=csv`."""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable, Mapping, Sequence

import litestar


def csv_response(columns: Sequence[str], rows: Iterable[Mapping[str, object]],
                 filename: str) -> litestar.Response[bytes]:
    """`rows` as a CSV attachment named `filename`: a header row of `columns`, then each
    row's values in that order (missing ones empty); UTF-8."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(columns)
    for row in rows:
        writer.writerow(["" if row.get(c) is None else row.get(c) for c in columns])
    return litestar.Response(out.getvalue().encode(), media_type="text/csv; charset=utf-8",
                             headers={"Content-Disposition":
                                      f'attachment; filename="{filename}"'})
