"""Email through SES; in local mode every message is also written to an outbox folder as .eml."""

from __future__ import annotations

from email.message import EmailMessage
from pathlib import Path

from chalicelib.adapters.aws_clients import client
from chalicelib.domain.identifiers import new_id


class SesMailer:
    def __init__(self, sender: str, outbox_dir: str | None = None) -> None:
        self.sender = sender
        self.outbox_dir = Path(outbox_dir) if outbox_dir else None

    def send(self, to: str, subject: str, text: str) -> None:
        msg = EmailMessage()
        msg["From"] = self.sender
        msg["To"] = to
        msg["Subject"] = subject
        msg.set_content(text)
        client("ses").send_raw_email(Source=self.sender, Destinations=[to], RawMessage={"Data": msg.as_bytes()})
        if self.outbox_dir is not None:
            self.outbox_dir.mkdir(parents=True, exist_ok=True)
            (self.outbox_dir / f"{new_id('eml')}.eml").write_bytes(msg.as_bytes())
