"""The one Mailer of a process, from the settings: SMTP, Mailgun, or the local file sink."""

from __future__ import annotations

import logging

from adapters.mail.file_sink import FileSinkMailer
from adapters.mail.mailgun import MailgunMailer
from adapters.mail.smtp import SmtpMailer, parse_smtp_url, verifying_context
from application.mail_ports import Mailer
from application.outbox_reactor import OutboxApp, OutboxReactor, RetryPolicy
from interfaces.settings import Settings

log = logging.getLogger("teaim.outbox")


def build_mailer(settings: Settings) -> Mailer:
    """SMTP_URL, else MAILGUN_DOMAIN, else files under $DATA_DIR/mail (the README's default)."""
    if settings.smtp_url is not None:
        config = parse_smtp_url(
            settings.smtp_url.get_secret_value(), timeout=settings.smtp_timeout_seconds
        )
        log.info("outbox sends through SMTP relay %s:%s", config.host, config.port)
        return SmtpMailer(config, verifying_context(settings.smtp_ca_file))
    if settings.mailgun_domain is not None and settings.mailgun_api_key is not None:
        log.info("outbox sends through Mailgun for %s", settings.mailgun_domain)
        return MailgunMailer(
            domain=settings.mailgun_domain,
            api_key=settings.mailgun_api_key.get_secret_value(),
            base_url=settings.mailgun_base_url,
            timeout=settings.smtp_timeout_seconds,
        )
    log.info("outbox writes mail to %s (no SMTP_URL or MAILGUN_DOMAIN)", settings.mail_dir)
    return FileSinkMailer(settings.mail_dir)


def outbox_reactor(app: OutboxApp, settings: Settings, mailer: Mailer) -> OutboxReactor:
    """The outbox reactor with the settings' sender and retry policy."""
    return OutboxReactor(
        app,
        mailer,
        settings.mail_sender,
        retry=RetryPolicy(
            base_seconds=settings.mail_retry_base_seconds,
            max_seconds=settings.mail_retry_max_seconds,
        ),
    )
