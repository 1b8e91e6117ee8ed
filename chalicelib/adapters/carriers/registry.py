"""Every carrier adapter, built from one credential source and one HTTP session (the container calls this)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from chalicelib.adapters.carriers.base import CarrierAdapter, CredentialSource

if TYPE_CHECKING:
    import requests


def build_carriers(
    credentials: CredentialSource, http: requests.Session, *, sandbox_env: bool
) -> dict[str, CarrierAdapter]:
    """The sandbox carrier and the real ones, by name. `sandbox_env` points DHL at its sandbox; EasyPost and
    Sendcloud choose test or live mode by the credentials themselves. Nothing is called and no credential is read
    until an adapter is used."""
    from chalicelib.adapters.carriers.dhl import DhlReturnsCarrier
    from chalicelib.adapters.carriers.easypost import EasyPostCarrier
    from chalicelib.adapters.carriers.sandbox import SandboxCarrier
    from chalicelib.adapters.carriers.sendcloud import SendcloudCarrier

    adapters: list[CarrierAdapter] = [
        SandboxCarrier(),
        DhlReturnsCarrier(credentials, http, sandbox=sandbox_env),
        EasyPostCarrier(credentials, http),
        SendcloudCarrier(credentials, http),
    ]
    return {adapter.name: adapter for adapter in adapters}
