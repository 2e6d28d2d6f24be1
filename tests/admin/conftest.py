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


@pytest.fixture
def make_contract(db, make_user, make_proposal):
    """A pending contract between a new coach and student (names and emails given)."""
    from contracts.services import accept_proposal

    def make(student_name="Ana Ruiz", student_email=None, coach_name="Maya Coach", **terms):
        coach = make_user("coach", name=coach_name)
        student = make_user("student", name=student_name, email=student_email)
        proposal_id = make_proposal(coach, student, **terms)
        contract = accept_proposal(proposal_id, db.session.merge(student))
        db.session.commit()
        return contract

    return make
