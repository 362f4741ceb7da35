"""The privacy notice (GDPR Art. 13), in German and English; retention and contact come from the settings."""

from __future__ import annotations

from server.subscribers.consent import CURRENT_CONSENT_VERSION
from server.subscribers.texts import Document, Section

_CONSENT = f"/mobile/v1/consent/{CURRENT_CONSENT_VERSION}"


def german(retention_days: int, operator_url: str) -> Document:
    return Document(
        language="de",
        title="Datenschutzhinweise für Nahbar",
        lead=(
            "Nahbar fragt Sie, wenn Sie an einer gemeinnützigen Einrichtung vorbeigehen, ob Sie dort helfen "
            "oder spenden möchten – nur wenn Sie eingewilligt haben. Hier steht, welche Daten wir dafür "
            "verarbeiten und welche nicht."
        ),
        sections=(
            Section(
                "Verantwortlich und Kontakt",
                paragraphs=(
                    "Verantwortlich ist der Betreiber dieser Plattform, nicht die einzelne Einrichtung. "
                    f"Sie erreichen ihn und seine Datenschutzbeauftragte oder seinen "
                    f"Datenschutzbeauftragten über {operator_url} und das Impressum der App.",
                ),
            ),
            Section(
                "Was wir speichern",
                items=(
                    "Eine zufällige, pseudonyme Kennung. Sie ist mit keinem Namen verbunden.",
                    "Den Schlüssel, aus dem Ihr Telefon die wechselnde Bluetooth-Kennung (Eddystone-EID) "
                    "berechnet, verschlüsselt; Ihr Zugangs-Token nur als Hashwert.",
                    "Ihre Einwilligungen (Textversion, Themen, Sprache, Zeitpunkt) und Einstellungen "
                    "(Themen, Sprache, eigene Ruhezeiten und Obergrenzen, ausgeschlossene Orte und "
                    "Einrichtungen).",
                    "Push-Adressen, wenn Sie Benachrichtigungen erlauben (Web-Push-Adresse und -Schlüssel, "
                    "FCM- oder APNs-Token).",
                    "Sichtungen: an welchem Ort, wann, mit welcher Signalstärke, geschätzten Entfernung und "
                    "Verweildauer ein Empfangsgerät Ihr Telefon erkannt hat (oder, beim iPhone, Ihr Telefon "
                    "das Signal des Ortes), und die daraus gebildeten Besuche.",
                    "Entscheidungen, ob und mit welcher Frage wir Sie angesprochen haben, jeweils mit Grund, "
                    "deren Zustellung und Ihre Reaktionen (geöffnet, angenommen, abgelehnt, „nicht hier“, "
                    "„nicht von dieser Einrichtung“).",
                    "Wenn Sie Ihr Telefon selbst mit einem Code als Testgerät einer Einrichtung gekoppelt "
                    "haben: welche Einrichtung, die Bezeichnung des Geräts und den Zeitpunkt.",
                ),
            ),
            Section(
                "Was wir nicht speichern",
                items=(
                    "Keinen Namen, keine E-Mail-Adresse, keine Telefonnummer – wir fragen nicht danach.",
                    "Keine MAC-Adresse: Die Empfangsgeräte verwerfen sie sofort, sie verlässt das Gerät nie.",
                    "Keinen GPS-Standort und keine Werbe-ID.",
                    "Bluetooth-Kennungen, die keinem teilnehmenden Telefon gehören: Sie werden verworfen, "
                    "nicht gespeichert.",
                ),
            ),
            Section(
                "Zweck und Rechtsgrundlage",
                paragraphs=(
                    "Wir verarbeiten die Daten, um Ihnen Fragen zum Helfen oder Spenden zu stellen und dabei "
                    "die Obergrenzen und Ruhezeiten einzuhalten. Rechtsgrundlage ist Ihre Einwilligung "
                    "(Art. 6 Abs. 1 Buchst. a DSGVO), für Rückschlüsse auf Gesundheit Ihre ausdrückliche "
                    "Einwilligung (Art. 9 Abs. 2 Buchst. a DSGVO). Den Nachweis von Einwilligung und "
                    "Widerruf bewahren wir auf, weil wir ihn erbringen müssen "
                    "(Art. 7 Abs. 1, Art. 6 Abs. 1 Buchst. c DSGVO).",
                    "Ob Sie eine Frage erhalten, entscheidet ein Programm nach festen Regeln. Das hat keine "
                    "rechtliche oder ähnlich erhebliche Wirkung für Sie.",
                ),
            ),
            Section(
                "Empfänger",
                paragraphs=(
                    "Die Einrichtungen erfahren nicht, wer Sie sind: Wir kennen weder Ihren Namen noch Ihre "
                    "Kontaktdaten. Push-Nachrichten stellt der Dienst Ihres Geräts oder Browsers zu (etwa "
                    "Google Firebase Cloud Messaging oder Apple Push Notification Service); dabei können "
                    "Daten in Staaten außerhalb der EU, etwa die USA, gelangen. Ohne Push holt die App "
                    "Fragen selbst bei uns ab.",
                ),
            ),
            Section(
                "Speicherdauer",
                items=(
                    f"Sichtungen und die daraus gebildeten Besuche: {retention_days} Tage, dann automatisch "
                    "gelöscht. Es bleiben nur tägliche "
                    "Zählungen je Ort ohne Bezug zu Ihnen.",
                    "Alles andere: bis Sie Ihre Einwilligung widerrufen.",
                    "Nach dem Widerruf: nur der Einwilligungsnachweis (Textversion, Themen, Sprache, "
                    "Zeitpunkte von Einwilligung und Widerruf), ohne jede Verbindung zu Ihnen.",
                ),
            ),
            Section(
                "Ihre Rechte",
                items=(
                    "Auskunft und Datenübertragbarkeit: Die App lädt alle Daten über Sie als JSON-Datei "
                    "herunter (Art. 15 und 20 DSGVO).",
                    "Berichtigung: Einstellungen können Sie jederzeit ändern (Art. 16 DSGVO).",
                    "Widerruf und Löschung in einem Schritt: „Teilnahme beenden“ in der App widerruft Ihre "
                    "Einwilligung und löscht sofort alle Daten über Sie (Art. 7 Abs. 3 und Art. 17 DSGVO).",
                    "Beschwerde bei einer Datenschutz-Aufsichtsbehörde (Art. 77 DSGVO).",
                ),
            ),
        ),
        links=(("Einwilligungstext", f"{_CONSENT}?lang=de"),),
    )


def english(retention_days: int, operator_url: str) -> Document:
    return Document(
        language="en",
        title="Nahbar privacy notice",
        lead=(
            "Nahbar asks you, when you walk past a charity, whether you would like to volunteer or donate "
            "there, and only if you have consented. This notice says which data we process for that and "
            "which we do not."
        ),
        sections=(
            Section(
                "Controller and contact",
                paragraphs=(
                    "The controller is the operator of this platform, not the individual charity. You can "
                    f"reach the operator and its data protection officer via {operator_url} and the app's "
                    "legal notice.",
                ),
            ),
            Section(
                "What we store",
                items=(
                    "A random, pseudonymous identifier. It is not linked to any name.",
                    "The key from which your phone computes its changing Bluetooth identifier "
                    "(Eddystone-EID), encrypted; your access token only as a hash.",
                    "Your consents (text version, topics, language, time) and settings (topics, language, "
                    "your own quiet hours and caps, places and charities you excluded).",
                    "Push addresses, if you allow notifications (Web Push endpoint and keys, FCM or APNs "
                    "token).",
                    "Sightings: at which place, when, with which signal strength, estimated distance and "
                    "dwell time a receiver recognised your phone (or, on an iPhone, your phone the place's "
                    "signal), and the visits formed from them.",
                    "Decisions whether and with which question we approached you, each with its reason, "
                    "their delivery, and your responses (opened, accepted, dismissed, “not here”, “not this "
                    "charity”).",
                    "If you paired your phone yourself, with a code, as a charity's test device: which "
                    "charity, the device's label and when.",
                ),
            ),
            Section(
                "What we do not store",
                items=(
                    "No name, no e-mail address, no phone number: we never ask for them.",
                    "No MAC address: the receivers discard it on the spot; it never leaves the device.",
                    "No GPS location and no advertising ID.",
                    "Bluetooth identifiers that belong to no participating phone: they are discarded, "
                    "not stored.",
                ),
            ),
            Section(
                "Purpose and legal basis",
                paragraphs=(
                    "We process the data to ask you about volunteering or donating while keeping to the caps "
                    "and quiet hours. The legal basis is your consent (Art. 6(1)(a) GDPR), and for anything "
                    "that may reveal health, your explicit consent (Art. 9(2)(a) GDPR). We keep proof of "
                    "consent and withdrawal because we must be able to show it (Art. 7(1), Art. 6(1)(c) "
                    "GDPR).",
                    "Whether you are asked is decided by a program following fixed rules. This has no legal "
                    "or similarly significant effect on you.",
                ),
            ),
            Section(
                "Recipients",
                paragraphs=(
                    "Charities do not learn who you are: we know neither your name nor your contact details. "
                    "Push messages are delivered by your device's or browser's push service (for example "
                    "Google Firebase Cloud Messaging or Apple Push Notification service); data may then "
                    "reach countries outside the EU, such as the USA. Without push, the app fetches "
                    "questions from us itself.",
                ),
            ),
            Section(
                "How long we keep data",
                items=(
                    f"Sightings and the visits formed from them: {retention_days} days, then deleted "
                    "automatically. Only daily counts per "
                    "place remain, with no link to you.",
                    "Everything else: until you withdraw your consent.",
                    "After withdrawal: only the proof of consent (text version, topics, language, times of "
                    "consent and withdrawal), without any link to you.",
                ),
            ),
            Section(
                "Your rights",
                items=(
                    "Access and portability: the app downloads all data about you as a JSON file "
                    "(Art. 15 and 20 GDPR).",
                    "Rectification: you can change your settings at any time (Art. 16 GDPR).",
                    "Withdrawal and erasure in one step: “Stop taking part” in the app withdraws your "
                    "consent and erases all data about you at once (Art. 7(3) and Art. 17 GDPR).",
                    "Complaint to a data protection supervisory authority (Art. 77 GDPR).",
                ),
            ),
        ),
        links=(("Consent text", f"{_CONSENT}?lang=en"),),
    )
