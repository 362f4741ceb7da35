"""The live path's reads of the policy on PostgreSQL are index lookups whatever the tables' and the batch's
size: checked with EXPLAIN on tables large enough that a sequential scan would tempt the planner, after
ANALYZE, for a batch of 1 person and of 100, with the plan PostgreSQL makes for the values given and the
generic plan it may switch to once psycopg has prepared the statement (after five runs).

The read of the raw decisions and responses this replaced turned into a scan of every prompt ever stored
once a batch held about 16 people (seen with auto_explain on 3 million decisions)."""

from __future__ import annotations

import re
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import pytest
from psycopg import sql
from sqlalchemy import Engine, select, text

from server.campaigns.models import Campaign
from server.core import direct
from server.core.direct import Query
from server.policy.live import DeciderLoad, SiteRef
from server.subscribers.models import Subscriber
from tests.conftest import Clock
from tests.world import make_charity

pytestmark = pytest.mark.parametrize("database_url", ["postgres"], indirect=True)

PEOPLE = 20_000
DECISIONS_EACH = 10  # the raw decisions the old read went through: 200,000


def _fill(engine: Engine, site_id: int, campaign_id: int, organisation_id: int) -> None:
    """People with a history row each, some exclusions, and ten days of their raw decisions and answers."""
    with engine.begin() as connection:
        connection.execute(
            text(
                "INSERT INTO subscribers (id, device_token_hash, identity_key_sealed, rotation_exponent,"
                " scopes, language, preferences, created_at, version)"
                " SELECT md5('s' || i)::uuid, md5('t' || i) || md5('u' || i), decode(md5('k' || i), 'hex'),"
                " 10, '[\"volunteer\"]', 'de', '{}', now(), 1 FROM generate_series(1, :people) AS i"
            ),
            {"people": PEOPLE},
        )
        connection.execute(
            text(
                "INSERT INTO person_history (subscriber_id, prompts, dismissed, accepted, updated_at)"
                " SELECT id, json_build_array(json_build_array(now(), current_date, :org, :campaign)),"
                " json_build_object(:campaign, now()), '{}', now() FROM subscribers"
            ),
            {"org": organisation_id, "campaign": campaign_id},
        )
        connection.execute(
            text(
                "INSERT INTO exclusions (subscriber_id, site_id, created_at)"
                " SELECT id, :site, now() FROM subscribers"
                " WHERE get_byte(decode(md5(id::text), 'hex'), 0) < 128"
            ),
            {"site": site_id},
        )
        connection.execute(
            text(
                "INSERT INTO prompt_decisions (subscriber_id, site_id, campaign_id, outcome, reason,"
                " decided_at, local_day, day_slot)"
                " SELECT s.id, :site, :campaign, 'prompted', 'prompted', now() - d * interval '1 day',"
                " current_date - d, 0 FROM subscribers AS s, generate_series(1, :each) AS d"
            ),
            {"site": site_id, "campaign": campaign_id, "each": DECISIONS_EACH},
        )
        connection.execute(
            text(
                "INSERT INTO prompt_responses (decision_id, kind, at)"
                " SELECT id, 'dismissed', decided_at FROM prompt_decisions WHERE id % 3 = 0"
            )
        )
    with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as connection:
        connection.execute(text("ANALYZE"))


def _nodes(plan: dict[str, Any]) -> Iterator[dict[str, Any]]:
    yield plan
    for child in plan.get("Plans", ()):
        yield from _nodes(child)


def _plans(engine: Engine, query: Query) -> dict[str, list[dict[str, Any]]]:
    """The statement's plan as PostgreSQL makes it for these values (custom) and for any (generic): the
    nodes of each."""
    statement, params = query
    with engine.connect() as connection:
        compiled = direct._compile(statement, connection.dialect)
        values = direct._values(compiled, params)
        names = list(dict.fromkeys(re.findall(r"%\((\w+)\)s", compiled.sql)))
        numbered = re.sub(r"%\((\w+)\)s", lambda m: f"${names.index(m.group(1)) + 1}", compiled.sql)
        driver = connection.connection.driver_connection
        assert driver is not None
        arguments = sql.SQL(", ").join(sql.Literal(values[name]) for name in names)
        found = {}
        with driver.cursor() as cursor:
            cursor.execute(sql.SQL("PREPARE policy_read AS {}").format(sql.SQL(numbered)))  # type: ignore[arg-type]
            for mode in ("force_custom_plan", "force_generic_plan"):
                cursor.execute(sql.SQL("SET plan_cache_mode = {}").format(sql.Identifier(mode)))
                cursor.execute(
                    sql.SQL("EXPLAIN (FORMAT JSON) EXECUTE policy_read ({})").format(arguments)
                    if names
                    else sql.SQL("EXPLAIN (FORMAT JSON) EXECUTE policy_read")
                )
                [[document]] = cursor.fetchall()
                found[mode] = list(_nodes(document[0]["Plan"]))
            cursor.execute("DEALLOCATE policy_read")
            cursor.execute("RESET plan_cache_mode")
        connection.rollback()
    return found


GROWING = {"person_history", "exclusions", "prompt_decisions", "prompt_responses", "subscribers"}


@pytest.mark.timeout(120)
@pytest.mark.parametrize("batch", [1, 100])
def test_the_policy_reads_are_index_lookups_for_1_and_100_people(
    engine: Engine, session, clock: Clock, batch
):
    charity = make_charity(session, clock())
    session.get_one(Campaign, charity.campaign_id).daily_budget = 500  # so the budgets' read counts prompts
    session.commit()
    _fill(engine, charity.site_id, charity.campaign_id, charity.organisation_id)
    people = session.scalars(select(Subscriber.id).order_by(Subscriber.id).limit(batch)).all()
    assert len(people) == batch
    site = SiteRef(charity.site_id, "Europe/Berlin", "de")
    load = DeciderLoad("postgresql", people, [(site, datetime(2026, 11, 25, 11, 0, tzinfo=UTC))])

    history, exclusions, *others = load.queries
    for query in load.queries:
        for mode, nodes in _plans(engine, query).items():
            scanned = {n["Relation Name"] for n in nodes if n["Node Type"] == "Seq Scan"}
            assert not scanned & GROWING, f"{mode}: a scan of {scanned & GROWING} for {batch} people"
    for mode, nodes in _plans(engine, history).items():
        used = {n.get("Index Name") for n in nodes if n.get("Relation Name") == "person_history"}
        assert used == {"pk_person_history"}, f"{mode}: {used}"
    for mode, nodes in _plans(engine, exclusions).items():
        used = {n.get("Index Name") for n in nodes if n.get("Relation Name") == "exclusions"}
        assert used == {"ix_exclusions_subscriber_id"}, f"{mode}: {used}"
    # The rows come from the history table alone: the raw decisions and responses are not read at all.
    for query in (history, exclusions):
        touched = {n.get("Relation Name") for mode in _plans(engine, query).values() for n in mode}
        assert not touched & {"prompt_decisions", "prompt_responses"}
    assert uuid.UUID(str(people[0])) in set(people)
