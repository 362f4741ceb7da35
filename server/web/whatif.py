"""Before changed caps, budgets or dwell are saved: the simulator's comparison (prompts per day now and with
the change, over the recorded visits of the last weeks), which the person confirms or takes back."""

from __future__ import annotations

from typing import Any, Final

from fastapi.responses import HTMLResponse
from sqlalchemy.orm import Session

from server.web.pages import Visit, page

CONFIRMED: Final = "confirmed"  # the form field that says: I saw the comparison, save it
BACK: Final = "back"  # the form field that says: let me change it again
DAYS: Final = 28  # the comparison's period: four weeks, every weekday four times


def confirmed(visit: Visit) -> bool:
    return visit.field(CONFIRMED) == "yes"


def going_back(visit: Visit) -> bool:
    return visit.field(BACK) == "yes"


def rows(result: dict[str, Any]) -> list[tuple[str, int, int]]:
    """(day, prompts now, prompts with the change) for every day either of them prompted."""
    now, proposed = result["current"]["prompts_per_day"], result["proposed"]["prompts_per_day"]
    return [(day, now.get(day, 0), proposed.get(day, 0)) for day in sorted(set(now) | set(proposed))]


def confirmation(
    visit: Visit,
    session: Session,
    section: str,
    result: dict[str, Any],
    *,
    action: str,
    title: str,
    changes: list[tuple[str, str, str]],
) -> HTMLResponse:
    """The comparison and the form that saves (or goes back): every field the person sent, carried along."""
    carried = [
        (key, value)
        for key, value in visit.form.multi_items()
        if isinstance(value, str) and key not in {"csrf_token", CONFIRMED, BACK}
    ]
    context = {
        "result": result,
        "rows": rows(result),
        "carried": carried,
        "action": action,
        "title": title,
        "changes": changes,
        "days": DAYS,
    }
    return page(visit, "whatif.html", section, context, session)
