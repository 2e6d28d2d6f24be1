"""Domain errors every package may raise; the app turns them into HTTP answers.

Services speak the domain, not HTTP: a service that cannot find what it was asked
for, or finds it is not the caller's to see, raises `NotFound`; `create_app`
answers it with the 404 page (an API or a job catches it as a LookupError).
"""

from __future__ import annotations


class NotFound(LookupError):
    """Nothing here, or nothing this user may see: both look the same from outside."""
