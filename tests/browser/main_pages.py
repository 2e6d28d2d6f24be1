"""The main pages of each role, checked for accessibility and for fitting a phone."""

from __future__ import annotations

STUDENT_PAGES = ["/contracts/", "/payments", "/notifications/", "/schedule", "/settings/"]
COACH_PAGES = [
    "/contracts/",
    "/contracts/proposals/new",
    "/earnings",
    "/payouts/",
    "/schedule",
    "/availability",
    "/notifications/",
    "/settings/",
]
ADMIN_PAGES = [
    "/admin/payments",
    "/admin/payments/list",
    "/admin/refunds",
    "/admin/disputes",
    "/admin/plans",
    "/admin/payouts",
    "/admin/books",
    "/admin/users",
    "/admin/contracts",
    "/admin/audit",
    "/admin/search?q=tomas",  # the header's search box: Tomás, his contracts, their payments
]
