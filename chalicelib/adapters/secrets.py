"""Secrets per merchant in SSM Parameter Store (SecureString), never in DynamoDB in clear, never logged."""

from __future__ import annotations

from chalicelib.adapters.aws_clients import client


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
        ssm = client("ssm")
        try:
            resp = ssm.get_parameter(Name=self._name(merchant_id, name), WithDecryption=True)
        except ssm.exceptions.ParameterNotFound:
            return None
        return str(resp["Parameter"]["Value"])
