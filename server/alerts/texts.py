"""The alert e-mails' words, in German and English: what happened, what it means, what to do."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Any, Final
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from server.alerts.schemas import Alert, Condition

_MONTHS_DE: Final = (
    "Januar Februar März April Mai Juni Juli August September Oktober November Dezember".split()
)
_MONTHS_EN: Final = (
    "January February March April May June July August September October November December".split()
)

# The scanner errors a heartbeat names (server/sites/schemas.py HeartbeatIn.scanner_error), in words.
_SCANNER_ERRORS: Final[dict[str, tuple[str, str]]] = {
    "adapter_missing": ("kein Bluetooth-Adapter gefunden", "no Bluetooth adapter found"),
    "adapter_off": ("der Bluetooth-Adapter ist ausgeschaltet", "the Bluetooth adapter is switched off"),
    "bluez_not_running": ("der Bluetooth-Dienst läuft nicht", "the Bluetooth service is not running"),
    "permission_denied": ("keine Berechtigung für Bluetooth", "no permission to use Bluetooth"),
    "dbus_unavailable": ("der Systembus (D-Bus) antwortet nicht", "the system bus (D-Bus) does not answer"),
    "busy": ("der Bluetooth-Adapter ist belegt", "the Bluetooth adapter is busy"),
    "timeout": ("der Bluetooth-Adapter antwortet nicht", "the Bluetooth adapter does not answer"),
}


def _when(moment: datetime, zone: str | None, language: str) -> str:
    try:
        tz = ZoneInfo(zone) if zone else None
    except (ZoneInfoNotFoundError, ValueError):
        tz = None
    local = moment.astimezone(tz) if tz else moment
    name = zone if tz else "UTC"
    if language == "de":
        return f"{local.day}. {_MONTHS_DE[local.month - 1]} {local.year} um {local:%H:%M} Uhr ({name})"
    return f"{local.day} {_MONTHS_EN[local.month - 1]} {local.year} at {local:%H:%M} ({name})"


def _scanner_error(code: Any, language: str) -> str:
    words = _SCANNER_ERRORS.get(str(code))
    if words is None:
        return "unbekannt" if language == "de" else "unknown"
    return words[0] if language == "de" else words[1]


def _gateway_silent(a: Alert, f: dict[str, Any], lang: str) -> tuple[str, str]:
    when = _when(a.since, f["zone"], lang)
    if lang == "de":
        began = f"hat sich seit dem Einrichten am {when}" if f["never"] else f"hat sich seit {when}"
        return (
            f"Gateway „{f['gateway']}“ ({f['site']}) meldet sich nicht",
            f"Das Gateway „{f['gateway']}“ am Standort „{f['site']}“ {began} nicht mehr beim Server "
            "gemeldet. Solange es still ist, erkennt Nahbar dort niemanden, und niemand bekommt dort eine "
            "Anfrage.\n\n"
            "Was Sie tun können: Prüfen Sie, ob der Raspberry Pi im Fenster Strom hat und mit dem Internet "
            "verbunden ist (Kabel, WLAN, Router), und starten Sie ihn einmal neu (Stecker ziehen, zehn "
            "Sekunden warten, wieder einstecken). Hilft das nicht, zeigt der Befehl `beacon-agent doctor` "
            "auf dem Pi, was fehlt; oder fragen Sie Ihren Plattformbetreiber.",
        )
    began = f"since it was set up on {when}" if f["never"] else f"since {when}"
    return (
        f"gateway “{f['gateway']}” ({f['site']}) is not reporting",
        f"The gateway “{f['gateway']}” at the site “{f['site']}” has not reported to the server {began}. "
        "While it is silent, Nahbar recognises nobody there, and nobody gets a prompt there.\n\n"
        "What you can do: check that the Raspberry Pi in the window has power and is connected to the "
        "internet (cable, Wi-Fi, router), and restart it once (unplug it, wait ten seconds, plug it in "
        "again). If that does not help, the command `beacon-agent doctor` on the Pi shows what is missing; "
        "or ask your platform operator.",
    )


def _scanner_failing(a: Alert, f: dict[str, Any], lang: str) -> tuple[str, str]:
    when = _when(a.since, f["zone"], lang)
    cause = _scanner_error(f["error"], lang)
    if lang == "de":
        return (
            f"Gateway „{f['gateway']}“ ({f['site']}) hört kein Bluetooth",
            f"Das Gateway „{f['gateway']}“ am Standort „{f['site']}“ meldet sich, aber sein Bluetooth-"
            f"Empfang ist seit {when} ausgefallen (Ursache laut Gateway: {cause}). Solange er ausfällt, "
            "erkennt Nahbar dort niemanden.\n\n"
            "Was Sie tun können: Starten Sie den Raspberry Pi einmal neu (Stecker ziehen, zehn Sekunden "
            "warten, wieder einstecken). Ist ein Bluetooth-Stick eingesteckt, prüfen Sie, ob er richtig "
            "sitzt. Hilft das nicht, zeigt `beacon-agent doctor` auf dem Pi die Ursache genauer.",
        )
    return (
        f"gateway “{f['gateway']}” ({f['site']}) hears no Bluetooth",
        f"The gateway “{f['gateway']}” at the site “{f['site']}” is reporting, but its Bluetooth scan has "
        f"been down since {when} (the gateway says: {cause}). While it is down, Nahbar recognises nobody "
        "there.\n\n"
        "What you can do: restart the Raspberry Pi once (unplug it, wait ten seconds, plug it in again). If "
        "a Bluetooth stick is plugged in, check that it sits firmly. If that does not help, `beacon-agent "
        "doctor` on the Pi shows the cause in more detail.",
    )


def _battery_low(a: Alert, f: dict[str, Any], lang: str) -> tuple[str, str]:
    volts = f"{f['battery_mv'] / 1000:.2f}"
    limit = f"{f['threshold_mv'] / 1000:.2f}"
    if lang == "de":
        volts, limit = volts.replace(".", ","), limit.replace(".", ",")
        return (
            f"Batterie des Beacons „{f['beacon']}“ ({f['site']}) ist fast leer",
            f"Der Beacon „{f['beacon']}“ am Standort „{f['site']}“ meldet eine Batteriespannung von "
            f"{volts} V (Warnschwelle {limit} V). Bald sendet er nicht mehr, und die Gateways können ihn "
            "nicht mehr zum Einmessen nutzen.\n\n"
            "Was Sie tun können: Tauschen Sie die Batterie in den nächsten Tagen aus (Typ und Anleitung "
            "stehen beim Hersteller des Beacons).",
        )
    return (
        f"the battery of beacon “{f['beacon']}” ({f['site']}) is nearly empty",
        f"The beacon “{f['beacon']}” at the site “{f['site']}” reports a battery voltage of {volts} V "
        f"(the warning level is {limit} V). Soon it will stop sending, and the gateways can no longer use it "
        "for calibration.\n\n"
        "What you can do: replace the battery in the next few days (the beacon's maker says which battery "
        "and how).",
    )


def _beacon_unheard(a: Alert, f: dict[str, Any], lang: str) -> tuple[str, str]:
    when = _when(a.since, f["zone"], lang)
    if lang == "de":
        heard = f"seit {when}" if f["heard_before"] else f"seit {when} (noch nie)"
        return (
            f"Beacon „{f['beacon']}“ ({f['site']}) ist nicht mehr zu hören",
            f"Kein Gateway hat den Beacon „{f['beacon']}“ am Standort „{f['site']}“ {heard} gehört. "
            "Vielleicht ist seine Batterie leer, er wurde versetzt oder entfernt, oder das Gateway des "
            "Standorts ist selbst gestört.\n\n"
            "Was Sie tun können: Sehen Sie nach, ob der Beacon noch an seinem Platz ist, und tauschen Sie "
            "sonst die Batterie. Wird er nicht mehr gebraucht, entfernen Sie ihn aus dem Standort.",
        )
    heard = f"since {when}" if f["heard_before"] else f"since {when} (never)"
    return (
        f"beacon “{f['beacon']}” ({f['site']}) is no longer heard",
        f"No gateway has heard the beacon “{f['beacon']}” at the site “{f['site']}” {heard}. Its battery "
        "may be empty, it may have been moved or removed, or the site's gateway itself is down.\n\n"
        "What you can do: check that the beacon is still in its place, and otherwise replace its battery. If "
        "it is no longer needed, remove it from the site.",
    )


def _budget_exhausted(a: Alert, f: dict[str, Any], lang: str) -> tuple[str, str]:
    if lang == "de":
        return (
            f"Kampagne „{f['campaign']}“ hat ihr Tagesbudget aufgebraucht",
            f"Die Kampagne „{f['campaign']}“ hat heute alle {f['budget']} Anfragen ihres Tagesbudgets "
            "gestellt. Bis morgen bekommt niemand mehr eine Anfrage dieser Kampagne; morgen geht es von "
            "selbst weiter.\n\n"
            "Was Sie tun können: nichts, wenn das so gewollt ist. Möchten Sie mehr Menschen ansprechen, "
            "erhöhen Sie das Tagesbudget der Kampagne.",
        )
    return (
        f"campaign “{f['campaign']}” has used up its daily budget",
        f"The campaign “{f['campaign']}” has given all {f['budget']} prompts of its daily budget today. "
        "Until tomorrow nobody gets a prompt of this campaign; tomorrow it goes on by itself.\n\n"
        "What you can do: nothing, if that is what you want. To reach more people, raise the campaign's "
        "daily budget.",
    )


_TEXTS: Final[dict[Condition, Callable[[Alert, dict[str, Any], str], tuple[str, str]]]] = {
    Condition.GATEWAY_SILENT: _gateway_silent,
    Condition.SCANNER_FAILING: _scanner_failing,
    Condition.BATTERY_LOW: _battery_low,
    Condition.BEACON_UNHEARD: _beacon_unheard,
    Condition.BUDGET_EXHAUSTED: _budget_exhausted,
}

_FOOTER: Final = {
    "de": (
        "Diese E-Mail geht an die Inhaber von „{org}“ bei Nahbar ({url}). Zu dieser Sache kommt keine "
        "weitere E-Mail, bis sie behoben ist und erneut auftritt."
    ),
    "en": (
        "This e-mail goes to the owners of “{org}” on Nahbar ({url}). There will be no further e-mail about "
        "this until it is fixed and happens again."
    ),
}


def compose(alert: Alert, organisation: str, languages: tuple[str, ...], public_url: str) -> tuple[str, str]:
    """The subject and plain-text body in each of `languages` (German first when both)."""
    subjects, bodies = [], []
    for language in languages:
        subject, body = _TEXTS[alert.condition](alert, alert.facts, language)
        subjects.append(subject)
        bodies.append(f"{body}\n\n{_FOOTER[language].format(org=organisation, url=public_url)}")
    separator = "\n\n" + "-" * 40 + "\n\n"
    return "Nahbar: " + " / ".join(subjects), separator.join(bodies) + "\n"
