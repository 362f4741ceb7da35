"""`nahbar simulate`: the simulator at the command line, with a progress bar."""

from __future__ import annotations

import json
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from pydantic import ValidationError
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TaskID, TextColumn, TimeRemainingColumn
from rich.table import Table

from server.core.config import Settings
from server.core.db import make_engine, make_sessionmaker, utcnow
from server.core.jsonpos import locate
from server.policy import repository
from server.policy.schemas import SimulationCreate
from server.policy.simulate import proposal_from, replay


class ProposalError(Exception):
    """The proposal file cannot be used; the message is one line naming the file, where, and what."""


def load_proposal(path: Path | None, days: int) -> SimulationCreate:
    """Proposed settings from a JSON file shaped like the admin endpoint's body, validated the same way."""
    if path is None:
        return SimulationCreate(days=days)
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else "not UTF-8 text"
        raise ProposalError(f"{path}: cannot read the proposal: {reason}") from exc
    try:
        raw: Any = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ProposalError(f"{path}:{exc.lineno}:{exc.colno}: not valid JSON: {exc.msg}") from exc
    if not isinstance(raw, dict):
        line, column = locate(text, ())
        raise ProposalError(f"{path}:{line}:{column}: the proposal must be a JSON object, as the API takes")
    try:
        return SimulationCreate.model_validate({"days": days} | raw)
    except ValidationError as exc:
        error = exc.errors()[0]
        loc = error["loc"]
        line, column = locate(text, loc)
        field = ".".join(str(part) for part in loc) or "(the whole proposal)"
        what = "unknown field" if error["type"] == "extra_forbidden" else error["msg"]
        more = f" (and {exc.error_count() - 1} more)" if exc.error_count() > 1 else ""
        raise ProposalError(f"{path}:{line}:{column}: {field}: {what}{more}") from exc


def run(
    settings: Settings,
    *,
    days: int,
    organisation: int | None,
    proposal_file: Path | None,
    until: datetime | None = None,
) -> int:
    """Replay the last `days` with the current and the proposed settings and print both side by side."""
    try:
        body = load_proposal(proposal_file, days)
    except ProposalError as exc:
        sys.stderr.write(f"nahbar simulate: {exc}\n")
        return 2
    console = Console()
    engine = make_engine(settings.database_url)
    try:
        with make_sessionmaker(engine)() as session:
            end = utcnow() if until is None else until.replace(tzinfo=until.tzinfo or UTC)
            recording = repository.recording(
                session, end - timedelta(days=body.days), end, settings.prompt_ttl_seconds
            )
            sites = repository.organisation_sites(session, organisation) if organisation is not None else None
    finally:
        engine.dispose()
    orgs = {organisation: body.organisation.model_dump()} if organisation is not None else {}
    proposal = proposal_from(
        body.policy.model_dump(), {cid: c.model_dump() for cid, c in body.campaigns.items()}, orgs
    )
    columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn())
    tallies: dict[str, dict[str, Any]] = {}
    with Progress(*columns, console=console) as bar:
        for name, proposed in (("current", None), ("proposed", proposal)):
            task = bar.add_task(f"replaying ({name})", total=len(recording.events))

            def advance(n: int, task: TaskID = task) -> None:
                bar.advance(task, n)

            tallies[name] = replay(recording, proposed, sites=sites, progress=advance).summary()
    table = Table(
        title=f"{recording.start:%Y-%m-%d} .. {recording.end:%Y-%m-%d}, {len(recording.events)} events"
    )
    table.add_column("")
    table.add_column("current", justify="right")
    table.add_column("proposed", justify="right")
    current, proposed_summary = tallies["current"], tallies["proposed"]
    for key in ("decisions", "prompts", "people_reached"):
        table.add_row(key, str(current[key]), str(proposed_summary[key]))
    for reason in sorted(set(current["suppressed"]) | set(proposed_summary["suppressed"])):
        table.add_row(
            f"suppressed: {reason}",
            str(current["suppressed"].get(reason, 0)),
            str(proposed_summary["suppressed"].get(reason, 0)),
        )
    for campaign in sorted(set(current["per_campaign"]) | set(proposed_summary["per_campaign"]), key=int):
        table.add_row(
            f"campaign {campaign}",
            str(current["per_campaign"].get(campaign, 0)),
            str(proposed_summary["per_campaign"].get(campaign, 0)),
        )
    console.print(table)
    return 0
