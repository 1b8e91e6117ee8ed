"""The one policy for merchant-supplied URLs (SSRF): which URLs and which resolved addresses may be called."""

from __future__ import annotations

import pytest

from chalicelib.domain import urls

REFUSED_URLS = [
    # scheme, credentials, fragment, malformed
    "http://hooks.example.com/x",
    "ftp://hooks.example.com/x",
    "https://user:pw@hooks.example.com/x",
    "https://hooks.example.com/x#frag",
    "https://hooks.example.com:99999/x",
    "https://hooks.example.com:0/x",
    "not a url",
    "https://hooks.exa mple.com/x",
    "https://hooks.example.com/x\r\nHost: evil",
    "https://" + "a" * 2050 + ".com",
    # loopback in every spelling
    "https://127.0.0.1/x",
    "https://127.0.0.2/x",
    "https://[::1]/x",
    "https://[::ffff:127.0.0.1]/x",
    "https://[::127.0.0.1]/x",
    "https://localhost/x",
    "https://LOCALHOST./x",
    "https://api.localhost/x",
    "https://0.0.0.0/x",
    "https://[::]/x",
    # integer, octal, hex and short IPv4 forms
    "https://2130706433/x",
    "https://017700000001/x",
    "https://0x7f000001/x",
    "https://0x7f.1/x",
    "https://127.1/x",
    "https://0177.0.0.1/x",
    "https://127.0.0.1./x",
    "https://10.0.0.5/x",
    # private (RFC 1918, ULA), link-local, CGNAT, multicast, reserved
    "https://10.0.0.5",
    "https://172.16.0.1/x",
    "https://192.168.1.1/x",
    "https://[fd00::1]/x",
    "https://[fc00::1]/x",
    "https://169.254.1.1/x",
    "https://[fe80::1]/x",
    "https://[fe80::1%25eth0]/x",
    "https://100.64.0.1/x",
    "https://100.127.255.254/x",
    "https://224.0.0.1/x",
    "https://[ff02::1]/x",
    "https://240.0.0.1/x",
    "https://255.255.255.255/x",
    "https://192.0.2.1/x",
    # IPv6 forms carrying a forbidden IPv4 address
    "https://[::ffff:10.0.0.1]/x",
    "https://[::ffff:169.254.169.254]/x",
    "https://[2002:7f00:1::]/x",
    "https://[2002:a00:5::1]/x",
    "https://[64:ff9b::7f00:1]/x",
    "https://[64:ff9b::a9fe:a9fe]/x",
    # cloud metadata
    "https://169.254.169.254/latest/meta-data",
    "https://[fd00:ec2::254]/x",
    "https://metadata.google.internal/computeMetadata/v1/",
    "https://metadata/x",
    "https://instance-data/x",
    "https://db.internal/x",
    # single-label and non-ASCII names
    "https://intranet/x",
    "https://\uff4c\uff4f\uff43\uff41\uff4c\uff48\uff4f\uff53\uff54/x",  # fullwidth "localhost"
]


@pytest.mark.parametrize("url", REFUSED_URLS)
@pytest.mark.parametrize("local", [False, True])
def test_unsafe_urls_are_refused_in_every_mode(url: str, local: bool) -> None:
    assert urls.url_error(url, local=local) is not None


@pytest.mark.parametrize(
    "url",
    [
        "https://hooks.example.com/boomerang",
        "https://hooks.example.com:8443/x?y=1",
        "https://shop.example.com",
        "https://93.184.215.14/x",
        "https://[2606:2800:220:1:248:1893:25c8:1946]/x",
        "https://[::ffff:93.184.215.14]/x",
        "https://[2002:5db8:d70e::1]/x",
    ],
)
@pytest.mark.parametrize("local", [False, True])
def test_public_https_urls_are_accepted(url: str, local: bool) -> None:
    assert urls.url_error(url, local=local) is None


def test_local_mode_accepts_exactly_http_127_0_0_1_with_a_port() -> None:
    assert urls.url_error("http://127.0.0.1:8080/refunds", local=True) is None
    assert urls.url_error("http://127.0.0.1:8080/refunds", local=False) is not None
    for url in (
        "http://127.0.0.1/x",  # no port
        "https://127.0.0.1:8080/x",
        "http://[::1]:8080/x",
        "http://[::ffff:127.0.0.1]:8080/x",
        "http://localhost:8080/x",
        "http://0.0.0.0:8080/x",
        "http://127.0.0.2:8080/x",
        "http://127.1:8080/x",
        "http://2130706433:8080/x",
        "http://10.0.0.1:8080/x",
        "http://hooks.example.com:8080/x",
    ):
        assert urls.url_error(url, local=True) is not None, url


@pytest.mark.parametrize(
    "address",
    [
        "127.0.0.1",
        "127.9.9.9",
        "::1",
        "::ffff:127.0.0.1",
        "::127.0.0.1",
        "0.0.0.0",  # noqa: S104 - an address refused, not bound
        "::",
        "10.1.2.3",
        "172.31.255.255",
        "192.168.0.1",
        "fd12:3456::1",
        "169.254.169.254",
        "fd00:ec2::254",
        "fe80::1",
        "100.64.0.1",
        "224.0.0.251",
        "ff05::2",
        "240.0.0.1",
        "2002:c0a8:0101::1",
        "64:ff9b::10.0.0.1",
        "::ffff:192.168.0.1",
        "2001:db8::1",
        "not-an-ip",
    ],
)
def test_forbidden_addresses(address: str) -> None:
    assert urls.address_error(address) is not None
    assert urls.connect_error("hooks.example.com", address, local=True) is not None


@pytest.mark.parametrize(
    "address", ["93.184.215.14", "8.8.8.8", "2606:4700:4700::1111", "::ffff:8.8.8.8", "64:ff9b::808:808"]
)
def test_public_addresses(address: str) -> None:
    assert urls.address_error(address) is None


def test_loopback_connects_only_for_the_local_receiver_url() -> None:
    assert urls.connect_error("127.0.0.1", "127.0.0.1", local=True) is None
    assert urls.connect_error("127.0.0.1", "127.0.0.1", local=False) is not None
    # a name that resolves to 127.0.0.1 is not the local receiver
    assert urls.connect_error("lvh.example.com", "127.0.0.1", local=True) is not None


def test_a_name_is_refused_when_any_of_its_addresses_is() -> None:
    assert urls.resolved_error("shop.example.com", ["93.184.215.14"], local=False) is None
    assert urls.resolved_error("shop.example.com", ["93.184.215.14", "10.0.0.5"], local=False) is not None
    assert urls.resolved_error("shop.example.com", ["169.254.169.254"], local=True) is not None
