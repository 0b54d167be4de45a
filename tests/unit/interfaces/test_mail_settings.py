"""Mail settings: one mailer chosen, sane defaults, secrets never echoed in errors."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from pydantic import SecretStr, ValidationError

from adapters.mail.file_sink import FileSinkMailer
from adapters.mail.mailgun import MailgunMailer
from adapters.mail.smtp import SmtpMailer
from interfaces.mailer import build_mailer
from interfaces.settings import Settings


def settings(**values: Any) -> Settings:
    return Settings(_env_file=None, **values)


def test_defaults_write_mail_to_the_data_dir_with_a_derived_message_id_domain(
    tmp_path: Path,
) -> None:
    defaults = settings(data_dir=tmp_path)
    assert defaults.message_id_domain == "teaim.localhost"
    assert settings(mail_from="Ops <ops@mail.example.org>").message_id_domain == (
        "mail.example.org"
    )
    assert settings(mail_domain="ids.example.org").message_id_domain == "ids.example.org"
    mailer = build_mailer(defaults)
    assert isinstance(mailer, FileSinkMailer)
    assert mailer.directory == tmp_path / "mail"


def test_smtp_or_mailgun_is_chosen_from_the_settings() -> None:
    smtp = settings(smtp_url=SecretStr("smtps://u:p@relay.example.com"))
    assert isinstance(build_mailer(smtp), SmtpMailer)
    mailgun = build_mailer(settings(mailgun_domain="mg.example.com", mailgun_api_key="k"))
    assert isinstance(mailgun, MailgunMailer)
    mailgun.close()


@pytest.mark.parametrize(
    "values",
    [
        {
            "smtp_url": "smtps://u:p@relay.example.com",
            "mailgun_domain": "mg.example.com",
            "mailgun_api_key": "k",
        },
        {"mailgun_domain": "mg.example.com"},
        {"mailgun_api_key": "k"},
        {"mailgun_domain": "../v4/evil", "mailgun_api_key": "k"},
        {"mail_from": "not an address"},
        {
            "mailgun_base_url": "http://api.mailgun.net",
            "mailgun_domain": "mg.example.com",
            "mailgun_api_key": "k",
        },
    ],
)
def test_ambiguous_or_unsafe_mail_settings_are_refused_at_start_up(
    values: dict[str, object],
) -> None:
    with pytest.raises(ValidationError):
        settings(**values)


def test_a_refused_smtp_url_is_not_echoed() -> None:
    with pytest.raises(ValidationError) as refused:
        settings(smtp_url="smtp://me:hunter2-secret@relay.example.com:25")
    assert "plain text" in str(refused.value)
    assert "hunter2-secret" not in str(refused.value)
