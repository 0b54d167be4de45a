"""Mailers: where the outbox hands its messages (an SMTP relay, Mailgun, a local file sink)."""
