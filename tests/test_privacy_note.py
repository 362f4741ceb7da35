"""The privacy impact note (firmware_notes/privacy-impact.md) stays true to the code it cites: every file and
API route it names exists, every code name it points a data-protection officer to is there, and the figures
it states are the code's."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Final

import beacon_agent.control
import beacon_agent.models
import beacon_agent.scanner
import beacon_agent.tracker
import server.core.security
import server.presence.service
import server.subscribers.repository
import server.subscribers.service
from beacon_agent.config import AgentSettings
from beacon_agent.tracker import MIN_READINGS, TrackerConfig
from server.app import create_app
from server.core.config import Settings
from server.retention.service import purge_batch
from tests.conftest import TEST_SECRET

ROOT: Final = Path(__file__).resolve().parent.parent
NOTE: Final = ROOT / "firmware_notes" / "privacy-impact.md"


def note() -> str:
    return NOTE.read_text()


def test_every_file_the_note_cites_exists():
    cited = set(
        re.findall(
            r"`((?:beacon_agent|server|mobile_api|firmware_notes|docs|deploy|tests)/[\w./-]+)`", note()
        )
    )
    assert len(cited) > 15, "the note cites the code; the pattern must find it"
    missing = sorted(path for path in cited if not (ROOT / path).exists())
    assert missing == [], f"the note cites files that do not exist: {missing}"


def test_every_phone_route_the_note_names_exists():
    app = create_app(Settings(environment="test", database_url="sqlite://", secret_key=TEST_SECRET))
    documented = [
        (method.upper(), re.compile(re.sub(r"\{[^}]+\}", "[^/]+", path) + "$"))
        for path, operations in app.openapi()["paths"].items()
        for method in operations
    ]
    named = set(re.findall(r"`(GET|POST|PATCH|DELETE) (/mobile/v1/[\w/{}-]+)`", note()))
    assert {("GET", "/mobile/v1/me/export"), ("DELETE", "/mobile/v1/me")} <= named
    missing = [
        (method, path)
        for method, path in sorted(named)
        if not any(m == method and pattern.match(path) for m, pattern in documented)
    ]
    assert missing == [], "the note names routes the app does not have"


def test_the_code_names_it_points_to_are_there():
    assert "Scanner._on_detection" in note()
    assert callable(beacon_agent.scanner.Scanner._on_detection)
    for name, module in (
        ("OR_PATTERNS", beacon_agent.scanner),
        ("PresenceEvent", beacon_agent.models),
        ("KeySealer", server.core.security),
        ("pseudonym", server.core.security),
        ("withdraw_and_erase", server.subscribers.service),
        ("erase", server.subscribers.repository),
    ):
        assert name in note(), name
        assert hasattr(module, name), f"{module.__name__}.{name} is gone; the note points to it"
    for method in ("advert", "observe"):
        assert f"Tracker.{method}" in note()
        assert callable(getattr(beacon_agent.tracker.Tracker, method))
    # What the gateway sends and stores about a phone, field by field, as the note lists it.
    assert list(beacon_agent.models.PresenceEvent.__dataclass_fields__) == [
        "id",
        "kind",
        "eid",
        "observed_at",
        "rssi",
        "distance_m",
        "dwell_s",
    ]
    # The drop the note describes: frames that are neither an EID nor a watched beacon are only counted.
    tracker = beacon_agent.tracker.Tracker(TrackerConfig())
    tracker.advert({0x004C: bytes.fromhex("1005031c2d3e4f")}, {}, -60.0, 1.0)  # an Apple Continuity frame
    assert (tracker.stats.dropped, tracker.stats.kept) == (1, 0)
    # Where the server drops an EID of nobody, and the heartbeat that carries only counters and beacons.
    assert callable(server.presence.service.ingest)
    assert callable(beacon_agent.control.Control.send_heartbeat)
    assert callable(purge_batch)


def test_the_figures_it_states_are_the_codes():
    text = note()
    config = TrackerConfig()
    settings = Settings()
    for figure, stated in (
        (MIN_READINGS == 3, "nach drei Empfängen"),
        (config.max_tracked == 4_096, "höchstens 4.096"),
        (config.exit_after_s == 20, "20 s nicht mehr zu hören"),
        (settings.retention_days == 14, "14 Tage (`NAHBAR_RETENTION_DAYS`"),
        (2**settings.eid_rotation_exponent == 1_024, "standardmäßig 1.024 s"),
        (AgentSettings().outbox_max_events == 100_000, "bis zu 100.000 Ereignisse"),
    ):
        assert figure, f"the code changed a figure the note states: {stated!r}"
        assert stated in text, stated
