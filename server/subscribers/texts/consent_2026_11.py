"""Consent text, version 2026-11. Never edit a published version: add a new module and register it."""

from __future__ import annotations

from typing import Final

from server.subscribers.texts import Document, Section

VERSION: Final = "2026-11"

DE: Final = Document(
    language="de",
    title="Einwilligung: Fragen von Hilfseinrichtungen, an denen Sie vorbeigehen",
    lead=(
        "Mit Nahbar können gemeinnützige Einrichtungen wie Hospize, Tafeln oder Notunterkünfte Sie fragen, "
        "ob Sie dort mithelfen oder spenden möchten, wenn Sie an ihrer Tür vorbeigehen. Dafür brauchen wir "
        "Ihre Einwilligung. Sie ist freiwillig; ohne sie steht nur diese Funktion nicht zur Verfügung."
    ),
    sections=(
        Section(
            "Worin Sie einwilligen",
            items=(
                "Ihr Telefon sendet per Bluetooth eine Kennung, die sich regelmäßig ändert (standardmäßig "
                "etwa alle 17 Minuten). Nur unser Server kann sie Ihnen zuordnen; für andere ist sie nicht "
                "wiederzuerkennen.",
                "Empfangsgeräte im Fenster teilnehmender Einrichtungen melden unserem Server, wann Ihr "
                "Telefon in der Nähe war, mit Signalstärke, geschätzter Entfernung und Verweildauer.",
                "Der Server entscheidet nach festen Regeln, ob Sie eine Frage erhalten: nur zu den Themen, "
                "die Sie wählen (Ehrenamt, Spenden oder beides), höchstens einmal am Tag, zweimal in 7 Tagen "
                "und viermal in 30 Tagen, nicht zwischen 21 und 8 Uhr und nie wieder an einem Ort oder von "
                "einer Einrichtung, die Sie abgelehnt haben.",
            ),
        ),
        Section(
            "Besonders geschützte Angaben",
            paragraphs=(
                "Schon dass Sie vor einer Einrichtung wie einem Hospiz verweilen, kann Rückschlüsse auf Ihre "
                "Gesundheit oder die Ihrer Angehörigen zulassen. Ihre Einwilligung umfasst deshalb "
                "ausdrücklich auch solche Angaben (Art. 9 Abs. 2 Buchst. a DSGVO).",
            ),
        ),
        Section(
            "Widerruf",
            paragraphs=(
                "Sie können Ihre Einwilligung jederzeit in der App widerrufen, so einfach, wie Sie sie "
                "erteilt haben. Der Widerruf wirkt sofort und löscht zugleich alle Daten über Sie. Was bis "
                "dahin geschah, bleibt rechtmäßig (Art. 7 Abs. 3 DSGVO).",
            ),
        ),
    ),
    links=(("Datenschutzhinweise", "/mobile/v1/privacy?lang=de"),),
)

EN: Final = Document(
    language="en",
    title="Consent: questions from charities you walk past",
    lead=(
        "With Nahbar, charities such as hospices, food banks or shelters can ask you whether you would like "
        "to volunteer or donate when you walk past their door. For this we need your consent. It is "
        "voluntary; without it, only this feature is unavailable."
    ),
    sections=(
        Section(
            "What you agree to",
            items=(
                "Your phone sends a Bluetooth identifier that changes regularly (by default about every "
                "17 minutes). Only our server can link it to you; to anyone else it is unrecognisable.",
                "Receivers in the windows of participating charities tell our server when your phone was "
                "near, with signal strength, estimated distance and how long it stayed.",
                "The server decides by fixed rules whether to ask you: only about the topics you choose "
                "(volunteering, donations or both), at most once a day, twice in 7 days and four times in "
                "30 days, not between 21:00 and 08:00, and never again at a place or from a charity you "
                "turned down.",
            ),
        ),
        Section(
            "Specially protected information",
            paragraphs=(
                "The mere fact that you linger outside a place such as a hospice can say something about "
                "your health or that of people close to you. Your consent therefore explicitly covers such "
                "information too (Art. 9(2)(a) GDPR).",
            ),
        ),
        Section(
            "Withdrawal",
            paragraphs=(
                "You can withdraw your consent at any time in the app, as easily as you gave it. Withdrawal "
                "takes effect at once and erases all data about you at the same time. What happened before "
                "remains lawful (Art. 7(3) GDPR).",
            ),
        ),
    ),
    links=(("Privacy notice", "/mobile/v1/privacy?lang=en"),),
)
