"""Stripe's error envelope: `{"error": {"type", "code", "message", "param"}}` plus HTTP status."""

from __future__ import annotations

from typing import Any

DOCS = "https://stripe.com/docs/error-codes/"


class StripeError(Exception):
    """An API error answered in Stripe's envelope.

    `store_idempotent` mirrors Stripe's rule that a request failing parameter
    validation never "started executing", so its key is not saved and may be
    reused; errors raised after validation are saved and replayed.
    """

    def __init__(self, message: str, *, status: int = 400, type_: str = "invalid_request_error",
                 code: str | None = None, param: str | None = None,
                 store_idempotent: bool = True, **extra: Any) -> None:
        super().__init__(message)
        self.message = message
        self.status = status
        self.type = type_
        self.code = code
        self.param = param
        self.store_idempotent = store_idempotent
        self.extra = extra

    def body(self) -> dict[str, Any]:
        error: dict[str, Any] = {
            "code": self.code,
            "doc_url": DOCS + self.code if self.code else None,
            "message": self.message,
            "param": self.param,
            "type": self.type,
        }
        error.update(self.extra)
        return {"error": error}


class ParamError(StripeError):
    """A parameter failed validation (400, never stored under an idempotency key)."""

    def __init__(self, message: str, param: str | None, code: str | None = None) -> None:
        super().__init__(message, code=code, param=param, store_idempotent=False)


def not_found(kind: str, object_id: str, param: str = "id", status: int = 404) -> StripeError:
    return StripeError(f"No such {kind}: '{object_id}'", status=status,
                       code="resource_missing", param=param)
