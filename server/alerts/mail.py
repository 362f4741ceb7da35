"""Sending the alert outbox over SMTP: each mail claimed in a short transaction, sent with no transaction
open, and recorded (sent, or retried later with a growing pause) in another."""

from __future__ import annotations

import logging
import smtplib
import ssl
from collections.abc import Callable
from datetime import datetime, timedelta
from email.message import EmailMessage
from email.utils import formatdate, make_msgid
from typing import Final

from sqlalchemy.orm import Session, sessionmaker

from server.alerts import repository
from server.alerts.models import AlertMail
from server.core.config import Settings
from server.core.db import session_scope

log = logging.getLogger("nahbar.alerts")

SMTP_TIMEOUT_S: Final = 20.0
# A claimed mail is another sender's to retry after this: well past one SMTP conversation's timeouts.
CLAIM_S: Final = 5 * 60
MAX_ATTEMPTS: Final = 12  # with the pauses below, about eleven hours of trying
RETRY_BASE_S: Final = 60
RETRY_MAX_S: Final = 3600
BATCH: Final = 50  # mails one run sends at most; the rest wait for the next minute


def retry_after(attempts: int) -> timedelta:
    """The pause after the `attempts`-th failed try: 1, 2, 4, ... minutes, at most an hour."""
    return timedelta(seconds=min(RETRY_BASE_S * 2 ** (attempts - 1), RETRY_MAX_S))


def _one_line(text: str) -> str:
    # Names come from people; a header must stay one line.
    return " ".join(text.split())


def message(settings: Settings, mail: AlertMail) -> EmailMessage:
    assert settings.smtp_from is not None
    msg = EmailMessage()
    msg["From"] = settings.smtp_from
    msg["To"] = ", ".join(mail.recipients)
    msg["Subject"] = _one_line(mail.subject)
    msg["Date"] = formatdate(localtime=False)
    msg["Message-ID"] = make_msgid(domain=settings.smtp_from.rpartition("@")[2].strip(" >") or None)
    msg["Auto-Submitted"] = "auto-generated"  # RFC 3834: no vacation replies to a machine
    msg.set_content(mail.body)
    return msg


def deliver(settings: Settings, msg: EmailMessage, recipients: list[str]) -> None:
    """One SMTP conversation; raises on any failure. With STARTTLS on, nothing is sent in clear."""
    assert settings.smtp_host is not None
    with smtplib.SMTP(settings.smtp_host, settings.smtp_port, timeout=SMTP_TIMEOUT_S) as smtp:
        smtp.ehlo()
        if settings.smtp_starttls:
            smtp.starttls(context=ssl.create_default_context())  # refuses a server that does not offer it
            smtp.ehlo()
        if settings.smtp_username and settings.smtp_password is not None:
            smtp.login(settings.smtp_username, settings.smtp_password.get_secret_value())
        smtp.send_message(msg, to_addrs=recipients)


def _error(exc: Exception) -> str:
    # The kind and SMTP code only: an SMTP answer may repeat the recipients' addresses.
    code = getattr(exc, "smtp_code", None)
    return f"{type(exc).__name__}{f' {code}' if code else ''}"[:200]


def send_due(
    sessions: sessionmaker[Session], settings: Settings, clock: Callable[[], datetime], batch: int = BATCH
) -> int:
    """Send the mails that are due; returns how many went out."""
    for session in session_scope(sessions):
        due = repository.due_mails(session, clock(), batch)
    sent = 0
    for mail_id in due:
        now = clock()
        for session in session_scope(sessions):
            mail = repository.claim_mail(session, mail_id, now, now + timedelta(seconds=CLAIM_S))
            if mail is not None:
                session.expunge(mail)
        if mail is None:
            continue  # another worker has it, or sent it
        try:
            deliver(settings, message(settings, mail), mail.recipients)
        except (smtplib.SMTPException, OSError, ValueError) as exc:
            failed = clock()
            last = mail.attempts >= MAX_ATTEMPTS
            for session in session_scope(sessions):
                repository.record_mail(
                    session,
                    mail_id,
                    last_error=_error(exc),
                    next_attempt_at=None if last else failed + retry_after(mail.attempts),
                )
            log.warning(
                "alert mail %d not sent (try %d of %d: %s)%s",
                mail_id,
                mail.attempts,
                MAX_ATTEMPTS,
                _error(exc),
                "; given up" if last else "; tried again later",
            )
            continue
        for session in session_scope(sessions):
            repository.record_mail(session, mail_id, sent_at=clock(), next_attempt_at=None, last_error=None)
        sent += 1
        log.info("alert mail %d sent to %d recipients", mail_id, len(mail.recipients))
    return sent
