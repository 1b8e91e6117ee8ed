"""What `make run` prints (local/banner.py)."""

from __future__ import annotations

from local.banner import render

CREDS = {
    "api": "http://127.0.0.1:8000",
    "moto": "http://127.0.0.1:5000",
    "operator_key": "op",
    "warehouse": {"id": "wh_1", "api_key": "wk"},
    "merchant": {"id": "mer_1", "slug": "demo-fashion", "api_key": "mk"},
    "easypost_webhook_secret": "s",
    "orders": [{"order_number": "DEMO-1001", "email": "erika@example.com"}],
    "outbox": ".local/outbox",
}


def test_the_banner_says_which_receivers_local_mode_accepts() -> None:
    # the outbound URL policy (chalicelib/domain/urls.py) in local mode: exactly http://127.0.0.1:<port>
    text = render(CREDS, ".local/credentials.json", ".local/walkthrough.sh")
    assert "http://127.0.0.1:<port>" in text
    assert "localhost" in text  # named among the refused loopback forms
