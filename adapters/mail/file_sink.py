"""The local file sink: each message as `<DATA_DIR>/mail/<email id>.eml` (no mail server needed).

The default mailer when neither SMTP nor Mailgun is configured, so a fresh checkout's README
commands "send" mail that a person can open. Each file is written to a temporary name in the
same directory and moved into place with `os.replace` (atomic on one file system): a repeat
send of one email (after a crash between the write and the record) replaces the file with the
same bytes, so the sink is exactly-once in effect.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

from application.mail_ports import MailSendError, OutgoingMessage, SendErrorKind


class FileSinkMailer:
    """Writes messages into one directory, one file per email id."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory

    def path_of(self, message: OutgoingMessage) -> Path:
        # The email id is a UUID: the name can never leave the directory.
        return self.directory / f"{message.email_id}.eml"

    def send(self, message: OutgoingMessage) -> str:
        target = self.path_of(message)
        try:
            self.directory.mkdir(parents=True, exist_ok=True)
            fd, temp = tempfile.mkstemp(dir=self.directory, prefix=".sending-", suffix=".tmp")
            try:
                with os.fdopen(fd, "wb") as handle:
                    handle.write(message.data)
                    handle.flush()
                    os.fsync(handle.fileno())
                os.replace(temp, target)
            except BaseException:
                Path(temp).unlink(missing_ok=True)
                raise
        except OSError as error:
            # A full disk or a missing permission: worth retrying once someone fixes it.
            raise MailSendError(SendErrorKind.TEMPORARY, f"file sink: {error}") from error
        return f"250 stored {target.name}"

    def close(self) -> None:
        """Nothing is held open."""
