"""The German catalogue of the admin pages is complete and current: every msgid the code and the templates
use (extracted as `make messages` does) has a German translation, none is fuzzy or left over, and each keeps
the placeholders of its msgid."""

from __future__ import annotations

from pathlib import Path

from babel.messages.extract import extract_from_dir
from babel.messages.frontend import parse_mapping_cfg
from babel.messages.pofile import read_po

from server.web import i18n

WEB = Path(i18n.__file__).parent


def extracted() -> set[str]:
    with (WEB / "babel.cfg").open() as cfg:
        method_map, options_map = parse_mapping_cfg(cfg)
    found = set()
    for _file, _line, message, _comments, _context in extract_from_dir(WEB, method_map, options_map):
        found.add(message if isinstance(message, str) else message[0])
    return found


def msgid(message) -> str:
    """A message's id; a plural's is its singular."""
    return message.id if isinstance(message.id, str) else message.id[0]


def translated(message) -> bool:
    strings = message.string if isinstance(message.string, tuple) else (message.string,)
    return all(strings)


def catalogue():
    with i18n.catalogue_path("de").open("rb") as po:
        return read_po(po, locale="de")


def test_every_text_of_the_pages_has_a_german_translation():
    used = extracted()
    assert len(used) > 30, "extraction found (almost) nothing: is babel.cfg still right?"
    german = catalogue()
    missing = sorted(used - {msgid(m) for m in german if m.id})
    assert not missing, f"run `make messages` and translate: {missing}"
    untranslated = sorted(msgid(m) for m in german if m.id and (m.fuzzy or not translated(m)))
    assert not untranslated, f"no German (or only a fuzzy guess) for: {untranslated}"


def test_the_catalogue_holds_nothing_the_pages_no_longer_say():
    unused = sorted({msgid(m) for m in catalogue() if m.id} - extracted())
    assert not unused, f"run `make messages` (it drops these): {unused}"


def test_translations_keep_their_placeholders():
    problems = [(message.id, [str(e) for e in errors]) for message, errors in catalogue().check()]
    assert not problems


def test_the_server_uses_the_catalogue_in_the_repository():
    assert i18n.gettext("de", "Enter a password.") == "Geben Sie ein Passwort ein."
    assert i18n.gettext("en", "Enter a password.") == "Enter a password."
    assert i18n.gettext("de", "Choose a password of at least %(n)s characters.", n=12) == (
        "Wählen Sie ein Passwort mit mindestens 12 Zeichen."
    )
