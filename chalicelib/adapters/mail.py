"""Email through SES; in local mode every message is also written to an outbox folder as .eml."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from email.message import EmailMessage
from pathlib import Path

from chalicelib.adapters.aws_clients import client
from chalicelib.domain.identifiers import new_id
from chalicelib.domain.text import single_line


@dataclass(frozen=True)
class Attachment:
    filename: str
    content: bytes
    content_type: str  # e.g. application/pdf


class SesMailer:
    def __init__(self, sender: str, outbox_dir: str | None = None) -> None:
        self.sender = sender
        self.outbox_dir = Path(outbox_dir) if outbox_dir else None

    def send(self, to: str, subject: str, text: str, attachments: Sequence[Attachment] = ()) -> None:
        """One plain-text message (UTF-8), with the attachments as MIME parts (multipart/mixed when there are any)."""
        msg = EmailMessage()
        # Header values are built from data (merchant names, order numbers): whatever got stored, no line break in
        # them can end a header and start another (the API refuses control characters; this is the second line).
        sender, to = single_line(self.sender), single_line(to)
        msg["From"] = sender
        msg["To"] = to
        msg["Subject"] = single_line(subject)
        # SES wants 7-bit parts: non-ASCII text (umlauts) goes quoted-printable rather than 8bit.
        msg.set_content(text, cte=None if text.isascii() else "quoted-printable")
        for a in attachments:
            maintype, _, subtype = a.content_type.partition("/")
            msg.add_attachment(
                a.content, maintype=maintype, subtype=subtype or "octet-stream", filename=single_line(a.filename)
            )
        raw = msg.as_bytes()
        client("ses").send_raw_email(Source=sender, Destinations=[to], RawMessage={"Data": raw})
        if self.outbox_dir is not None:
            self.outbox_dir.mkdir(parents=True, exist_ok=True)
            (self.outbox_dir / f"{new_id('eml')}.eml").write_bytes(raw)
