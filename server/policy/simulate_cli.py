"""`nahbar simulate`: the simulator at the command line, with a progress bar."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TaskID, TextColumn, TimeRemainingColumn
from rich.table import Table

from server.core.config import Settings
from server.core.db import make_engine, make_sessionmaker, utcnow
from server.policy import repository
from server.policy.schemas import SimulationCreate
from server.policy.simulate import proposal_from, replay


def load_proposal(path: Path | None, days: int) -> SimulationCreate:
    """Proposed settings from a JSON file shaped like the admin endpoint's body, validated the same way."""
    raw: dict[str, Any] = json.loads(path.read_text()) if path is not None else {}
    return SimulationCreate.model_validate({"days": days} | raw)


def run(
    settings: Settings,
    *,
    days: int,
    organisation: int | None,
    proposal_file: Path | None,
    until: datetime | None = None,
) -> int:
    """Replay the last `days` with the current and the proposed settings and print both side by side."""
    console = Console()
    body = load_proposal(proposal_file, days)
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
