"""What the admin pages say, in German and English."""

from __future__ import annotations

from typing import Final

INVITE: Final[dict[str, dict[str, str]]] = {
    "de": {
        "title": "Einladung annehmen",
        "lead": "Sie wurden eingeladen, bei einer Organisation in Nahbar mitzuarbeiten. "
        "Legen Sie hier Ihr Passwort fest.",
        "fix": "Bitte prüfen Sie:",
        "token": "Einladungscode",
        "token_hint": "Der Teil Ihres Einladungslinks nach dem Zeichen #. "
        "Steht er schon im Feld, ist alles gut.",
        "password": "Neues Passwort",
        "password_hint": "Mindestens {n} Zeichen. Haben Sie schon ein Konto in Nahbar, "
        "geben Sie stattdessen dessen Passwort ein.",
        "password_repeat": "Passwort wiederholen",
        "submit": "Einladung annehmen",
        "done_title": "Willkommen",
        "done": "Geschafft: Ihr Konto {email} gehört jetzt zu der Organisation, die Sie eingeladen hat. "
        "Sie melden sich mit dieser E-Mail-Adresse und Ihrem Passwort an.",
        "token_missing": "Geben Sie den Einladungscode ein.",
        "token_format": "Dieser Einladungscode ist unvollständig. "
        "Kopieren Sie alles nach dem # aus dem Link.",
        "token_gone": "Diese Einladung ist unbekannt, schon benutzt, zurückgezogen oder abgelaufen. "
        "Bitten Sie um eine neue Einladung.",
        "password_missing": "Geben Sie ein Passwort ein.",
        "password_long": "Das Passwort ist zu lang (höchstens 1024 Zeichen).",
        "password_short": "Wählen Sie ein Passwort mit mindestens {n} Zeichen.",
        "password_wrong": "Zu Ihrer E-Mail-Adresse gibt es schon ein Konto. Geben Sie dessen Passwort ein.",
        "password_locked": "Zu viele falsche Passwörter. Warten Sie {minutes} Minuten und versuchen Sie es "
        "dann noch einmal.",
        "repeat_mismatch": "Die beiden Passwörter sind nicht gleich.",
        "refused": "Bitte nutzen Sie das Formular auf dieser Seite.",
    },
    "en": {
        "title": "Accept your invitation",
        "lead": "You have been invited to work with an organisation in Nahbar. Choose your password here.",
        "fix": "Please check:",
        "token": "Invitation code",
        "token_hint": "The part of your invitation link after the # sign. If it is already in the field, "
        "all is well.",
        "password": "New password",
        "password_hint": "At least {n} characters. If you already have a Nahbar account, enter its password "
        "instead.",
        "password_repeat": "Repeat the password",
        "submit": "Accept invitation",
        "done_title": "Welcome",
        "done": "Done: your account {email} now belongs to the organisation that invited you. "
        "Sign in with this e-mail address and your password.",
        "token_missing": "Enter the invitation code.",
        "token_format": "This invitation code is incomplete. Copy everything after the # in the link.",
        "token_gone": "This invitation is unknown, already used, withdrawn or expired. Ask for a new one.",
        "password_missing": "Enter a password.",
        "password_long": "The password is too long (at most 1024 characters).",
        "password_short": "Choose a password of at least {n} characters.",
        "password_wrong": "Your e-mail address already has an account. Enter its password.",
        "password_locked": "Too many wrong passwords. Wait {minutes} minutes and try again.",
        "repeat_mismatch": "The two passwords are not the same.",
        "refused": "Please use the form on this page.",
    },
}
