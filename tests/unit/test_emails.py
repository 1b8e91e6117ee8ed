"""Email addresses: one normalised form for storing, matching and indexing (domain/emails.py)."""

from __future__ import annotations

import unicodedata

import pytest

from chalicelib.domain.emails import email_digest, normalise_email, same_email
from chalicelib.domain.return_index import email_key


@pytest.mark.parametrize(
    ("given", "stored"),
    [
        ("erika@example.com", "erika@example.com"),
        ("  Erika@Example.COM\t", "erika@example.com"),
        ("MÜLLER@EXAMPLE.COM", "müller@example.com"),
        (unicodedata.normalize("NFD", "müller@exämple.de"), "müller@exämple.de"),
        ("Groß@example.de", "groß@example.de"),  # not casefolded: "gross@" is another mailbox
        ("İpek@example.com", unicodedata.normalize("NFC", "i̇pek@example.com")),
    ],
)
def test_normalise_email(given: str, stored: str) -> None:
    out = normalise_email(given)
    assert out == stored
    assert unicodedata.is_normalized("NFC", out)
    assert normalise_email(out) == out  # idempotent


def test_same_email_compares_non_ascii_addresses_in_any_form_and_refuses_others() -> None:
    assert same_email("müller@example.com", unicodedata.normalize("NFD", " MÜLLER@example.com "))
    assert not same_email("müller@example.com", "muller@example.com")
    assert not same_email("erika@example.com", "érika@example.com")
    assert not same_email("groß@example.de", "gross@example.de")


def test_index_key_and_digest_follow_the_normalised_form() -> None:
    assert email_key("MÜLLER@Example.com") == email_key(unicodedata.normalize("NFD", "müller@example.com"))
    assert email_digest("a@b.de") != email_digest("b@b.de")
