"""Fixtures for the admin console's tests."""

from __future__ import annotations

import pytest

from tests.conftest import login


@pytest.fixture
def admin_user(make_user):
    return make_user("admin", email="ada@example.com", name="Ada Admin")


@pytest.fixture
def admin_client(client, admin_user):
    """A test client logged in as an admin."""
    login(client, admin_user)
    return client
