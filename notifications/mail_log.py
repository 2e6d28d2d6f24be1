"""The mail backend outside production without a mail server (`make run`, the demo): each
mail is written to the log, readable (subject and body), instead of being sent."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from flask import current_app
from flask_mailman.backends.base import BaseEmailBackend


class EmailBackend(BaseEmailBackend):  # type: ignore[misc]
    def send_messages(self, messages: Sequence[Any]) -> int:
        for message in messages:
            message.message()  # the same checks of headers as a real send
            current_app.logger.info(
                "mail to %s: %s\n%s", ", ".join(message.to), message.subject, message.body
            )
        return len(messages)
