"""Query parameters more than one route reads."""

from __future__ import annotations

from fastapi import HTTPException, Query

from ..errors import UniadError
from ..runtime.part_id import check_part_id


def part_id_query(
    part_id: str | None = Query(None, description="printable text, at most 200 characters"),
) -> str | None:
    """`?part_id=` under the one part-id rule: refused (422) before anything is scored."""
    try:
        return check_part_id(part_id)
    except UniadError as exc:
        raise HTTPException(422, str(exc)) from None
