"""Powertools singletons. Logger and Metrics are cheap; the Tracer (aws_xray_sdk, ~0.3 s) is built on demand."""

from __future__ import annotations

import logging
from functools import lru_cache
from typing import Any

from aws_lambda_powertools import Logger, Metrics

#: Field names the logging module refuses in `extra` ("Attempt to overwrite 'created' in LogRecord", a KeyError
#: raised inside the request that logged). tests/unit/test_logging_fields.py keeps every log call in the code clear
#: of them; SafeLogger renames one that slips through instead of failing the request.
RESERVED_LOG_FIELDS = frozenset(vars(logging.LogRecord("", logging.INFO, "", 0, "", None, None))) | {
    "message",
    "asctime",
    "taskName",
}
_CALL_OPTIONS = frozenset({"exc_info", "stack_info", "stacklevel", "extra"})


def safe_fields(fields: dict[str, Any]) -> dict[str, Any]:
    """`fields` with each reserved name suffixed by ``_field`` (``created`` -> ``created_field``)."""
    return {f"{k}_field" if k in RESERVED_LOG_FIELDS else k: v for k, v in fields.items()}


class SafeLogger(Logger):
    """Powertools' Logger whose structured fields can never make a log call raise (a log line must not turn a
    handled request into a 500)."""

    def _safe(self, kwargs: dict[str, Any]) -> dict[str, Any]:
        options = {k: kwargs.pop(k) for k in list(kwargs) if k in _CALL_OPTIONS}
        fields = safe_fields({**(options.pop("extra", None) or {}), **kwargs})
        # one frame more than Powertools expects, so `location` still names the caller
        options["stacklevel"] = int(options.get("stacklevel", 2)) + 1
        return {**options, "extra": fields}

    def debug(self, msg: object, *args: object, **kwargs: Any) -> None:  # type: ignore[override]
        super().debug(msg, *args, **self._safe(kwargs))

    def info(self, msg: object, *args: object, **kwargs: Any) -> None:  # type: ignore[override]
        super().info(msg, *args, **self._safe(kwargs))

    def warning(self, msg: object, *args: object, **kwargs: Any) -> None:  # type: ignore[override]
        super().warning(msg, *args, **self._safe(kwargs))

    def error(self, msg: object, *args: object, **kwargs: Any) -> None:  # type: ignore[override]
        super().error(msg, *args, **self._safe(kwargs))

    def exception(self, msg: object, *args: object, **kwargs: Any) -> None:  # type: ignore[override]
        kwargs.setdefault("exc_info", True)
        super().exception(msg, *args, **self._safe(kwargs))

    def critical(self, msg: object, *args: object, **kwargs: Any) -> None:  # type: ignore[override]
        super().critical(msg, *args, **self._safe(kwargs))


logger = SafeLogger(service="boomerang")
metrics = Metrics(namespace="Boomerang", service="boomerang")


@lru_cache(maxsize=1)
def tracer() -> Any:
    from aws_lambda_powertools import Tracer

    return Tracer(service="boomerang")
