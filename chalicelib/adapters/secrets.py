"""Secrets in SSM Parameter Store (SecureString), never in DynamoDB in clear, never logged.

Two families under one prefix:
- per merchant: ``{prefix}/merchants/{merchant_id}/{name}`` (webhook secrets, shop credentials);
- per carrier account: ``{prefix}/carriers/{account}/{carrier}/{key}``, where `account` is a warehouse id or
  ``default`` (the operator's own account). A key a warehouse has not set falls back to ``default``, key by key:
  an operator-wide API key can go with a warehouse's own user name and password.
"""

from __future__ import annotations

import contextlib

from chalicelib.adapters.aws_clients import client

#: The account name under which the operator's own carrier credentials are stored.
DEFAULT_ACCOUNT = "default"


class SsmSecrets:
    def __init__(self, prefix: str) -> None:
        self.prefix = prefix.rstrip("/")

    def _name(self, merchant_id: str, name: str) -> str:
        return f"{self.prefix}/merchants/{merchant_id}/{name}"

    def put(self, merchant_id: str, name: str, value: str) -> None:
        client("ssm").put_parameter(
            Name=self._name(merchant_id, name), Value=value, Type="SecureString", Overwrite=True
        )

    def get(self, merchant_id: str, name: str) -> str | None:
        return self._read(self._name(merchant_id, name))

    def delete(self, merchant_id: str, name: str) -> None:
        """Gone for good; deleting what is not there is fine (a retried delete)."""
        ssm = client("ssm")
        with contextlib.suppress(ssm.exceptions.ParameterNotFound):
            ssm.delete_parameter(Name=self._name(merchant_id, name))

    # ----- carrier credentials (satisfies chalicelib.adapters.carriers.base.CredentialSource) -------------------
    def _carrier_name(self, account: str | None, carrier: str, key: str) -> str:
        for part in (account, carrier, key):
            if part is not None and (not part or "/" in part):
                raise ValueError("carrier credential path parts must be non-empty and contain no '/'")
        return f"{self.prefix}/carriers/{account or DEFAULT_ACCOUNT}/{carrier}/{key}"

    def carrier_credential(self, account: str | None, carrier: str, key: str) -> str | None:
        """`key` of `carrier` for `account` (a warehouse id), else the default account's; None if neither has it."""
        value = self._read(self._carrier_name(account, carrier, key))
        if value is None and account not in (None, DEFAULT_ACCOUNT):
            value = self._read(self._carrier_name(None, carrier, key))
        return value

    def put_carrier_credential(self, account: str | None, carrier: str, key: str, value: str) -> None:
        client("ssm").put_parameter(
            Name=self._carrier_name(account, carrier, key), Value=value, Type="SecureString", Overwrite=True
        )

    def _read(self, name: str) -> str | None:
        ssm = client("ssm")
        try:
            resp = ssm.get_parameter(Name=name, WithDecryption=True)
        except ssm.exceptions.ParameterNotFound:
            return None
        return str(resp["Parameter"]["Value"])
