"""The main pages of each role, checked for accessibility and for fitting a phone and a
laptop; and the long words the layout sweep fills them with."""

from __future__ import annotations

STUDENT_PAGES = ["/contracts/", "/memberships/", "/payments", "/notifications/", "/schedule",
                 "/settings/"]
COACH_PAGES = [
    "/contracts/",
    "/contracts/proposals/new",
    "/offers/",
    "/offers/new",
    "/offers/memberships/new",
    "/memberships/",
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
    "/admin/reviews",
    "/admin/refunds",
    "/admin/refunds/all",
    "/admin/disputes",
    "/admin/plans",
    "/admin/payouts",
    "/admin/books",
    "/admin/events",
    "/admin/users",
    "/admin/contracts",
    "/admin/memberships",
    "/admin/audit",
    "/admin/search?q=tomas",  # the header's search box: Tomás, his contracts, their payments
]
LOGGED_OUT_PAGES = ["/", "/auth/login", "/auth/register", "/auth/forgot", "/c/maya-lindqvist"]

# The widths the sweep checks: a phone and a laptop.
PHONE = {"width": 390, "height": 844}
LAPTOP = {"width": 1280, "height": 800}

# Names at the 100-character limit, titles at the 120-character limit: one title a single
# unbroken word, one of long words; and a long e-mail address.
LONG_STUDENT = (
    "Maria Fernanda Guadalupe de los Ángeles Castellanos-Villavicencio"
    " y Montenegro de la Torre Ibáñez-Li"
)
LONG_COACH = (
    "Sir Bartholomew Alexander Christopherson-Wetherington III,"
    " of Kensington upon Thames and Westminster"
)
LONG_TITLE = (
    "Executive presence and storytelling for first-time engineering managers in fast-growing teams"
)
UNBROKEN_TITLE = "Negotiation" + "X" * 98 + "Masterclass"
LONG_WORDS_TITLE = (
    "Internationalisation-and-localisation-strategy workshops for multi-disciplinary"
    " customer-experience-transformation leads"
)
LONG_EMAIL = (
    "maria.fernanda.guadalupe.castellanos-villavicencio@"
    "students.universidad-internacional-de-catalunya.example.com"
)
