"""A customer's email address in the one form it is stored, matched and indexed in.

`normalise_email` is applied at order intake (every order is upserted through `services.orders.upsert_order`: API,
CSV import, Shopify and WooCommerce webhooks), when a portal session or a withdrawal is opened, and to the
`GET /v1/returns` email filter (`return_index.email_key`). Stored and given addresses are both normalised before
they are compared, so an order kept in an older form still matches.

The form: surrounding whitespace removed, Unicode NFC (a composed "ü" and "u" + combining diaeresis are one
address), and the whole address in lower case. Case is folded on the local part too: RFC 5321 allows a mailbox
server to tell `Anna@` from `anna@`, but no real one does, and customers type their address in whatever case
(the risk rules later treat one mailbox as one customer on the same grounds). `str.lower`, not `str.casefold`: the
stored form is also where mail is sent, and casefold would turn "groß@" into a different mailbox, "gross@".
Internationalised domains are compared in the form given (a Unicode domain and its `xn--` spelling are not
equated).
"""

from __future__ import annotations

import hashlib
import hmac
import unicodedata


def normalise_email(email: str) -> str:
    """The stored and compared form of an email address (NFC, stripped, lower case)."""
    # lower() can decompose (e.g. "İ" -> "i" + combining dot above): compose again afterwards
    return unicodedata.normalize("NFC", unicodedata.normalize("NFC", email.strip()).lower())


def same_email(a: str, b: str) -> bool:
    """Both addresses name the same mailbox, compared in constant time on their UTF-8 bytes (hmac.compare_digest
    refuses non-ASCII str)."""
    return hmac.compare_digest(normalise_email(a).encode("utf-8"), normalise_email(b).encode("utf-8"))


def email_digest(email: str) -> str:
    """A stable hash of the normalised address: an index key or a counter key that holds no address."""
    return hashlib.sha256(normalise_email(email).encode("utf-8")).hexdigest()
