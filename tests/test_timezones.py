"""The zones people pick from: canonical IANA zones only, grouped by region; old names read
as the zone they link to; and each person's zone named beside the times they read."""

from __future__ import annotations

import re
from datetime import UTC, date, datetime

import pytest
from sqlalchemy import select

from accounts.models import User
from accounts.timezones import (
    canonical_zone,
    canonical_zones,
    zone_aliases,
    zone_caption,
    zone_groups,
)
from tests.conftest import login
from tests.support import serve_in_thread, shot
from tests.test_accounts import REGISTRATION


def test_the_offered_zones_are_the_canonical_ones_and_utc():
    offered = canonical_zones()
    assert {"America/New_York", "Asia/Kolkata", "Europe/Kyiv", "Europe/Amsterdam", "UTC"} <= offered
    # Backward-compatible links and bare offsets are not offered...
    assert not offered & {"US/Eastern", "Asia/Calcutta", "Europe/Kiev", "EST", "GMT", "Etc/UTC"}
    assert not any(name.startswith(("Etc/", "US/", "SystemV/")) for name in offered)
    assert 300 < len(offered) < 500
    # ...but read as the zone they name.
    assert zone_aliases()["US/Eastern"] == "America/New_York"
    assert canonical_zone("Asia/Calcutta") == "Asia/Kolkata"
    assert canonical_zone("Europe/Kiev") == "Europe/Kyiv"
    assert canonical_zone("Etc/UTC") == canonical_zone("GMT") == "UTC"
    assert canonical_zone("Europe/Paris") == "Europe/Paris"
    assert canonical_zone("Etc/GMT+5") == "Etc/GMT+5"  # no offered equal: left as it is


def test_zones_are_grouped_by_region_with_their_offset_of_the_day():
    winter = dict(zone_groups(date(2027, 1, 15)))
    summer = dict(zone_groups(date(2027, 7, 15)))
    assert list(winter) == ["Africa", "America", "Antarctica", "Arctic", "Asia", "Atlantic",
                            "Australia", "Europe", "Indian", "Pacific", "UTC"]
    labels = {choice.value: choice.label for choice in winter["America"]}
    assert labels["America/New_York"] == "New York (UTC\u221205:00)"
    assert labels["America/Argentina/Buenos_Aires"] == "Argentina / Buenos Aires (UTC\u221203:00)"
    summer_labels = {choice.value: choice.label for choice in summer["America"]}
    assert summer_labels["America/New_York"] == "New York (UTC\u221204:00)"
    assert {c.value: c.label for c in winter["Asia"]}["Asia/Kolkata"] == "Kolkata (UTC+05:30)"
    assert [c.value for c in winter["UTC"]] == ["UTC"]


def test_zone_caption_names_the_place_and_the_abbreviation_of_the_moment():
    january, july = datetime(2027, 1, 5, tzinfo=UTC), datetime(2027, 7, 5, tzinfo=UTC)
    assert zone_caption("America/New_York", january) == "New York (EST)"
    assert zone_caption("America/New_York", july) == "New York (EDT)"
    assert zone_caption("US/Eastern", july) == "New York (EDT)"
    assert zone_caption("Europe/Istanbul", july) == "Istanbul (UTC+03:00)"  # no letters for it
    assert zone_caption("UTC", july) == zone_caption(None, july) == "UTC"


def test_the_sign_up_select_is_grouped_and_holds_no_old_names(client):
    page = client.get("/auth/register").get_data(as_text=True)
    select_html = page[page.index('<select'):page.index('</select>')]
    groups = re.findall(r'<optgroup label="([^"]+)">', select_html)
    assert groups[:2] == ["Africa", "America"] and groups[-1] == "UTC"
    assert 'value="America/New_York"' in select_html
    assert 'value="US/Eastern"' not in select_html and 'value="Asia/Calcutta"' not in select_html
    # Without JavaScript UTC is picked; the script picks the browser's zone.
    assert re.search(r'<option selected value="UTC">|<option value="UTC" selected', select_html)
    assert 'data-zone-preselect="browser"' in select_html
    assert '"Asia/Calcutta":"Asia/Kolkata"' in page.replace("&#34;", '"').replace("&quot;", '"')
    assert "js/zone-picker.js" in page


def test_registering_with_an_old_zone_name_saves_the_canonical_one(client, db):
    response = client.submit("/auth/register", {**REGISTRATION, "timezone": "Asia/Calcutta"})
    assert response.status_code == 302
    assert db.session.scalar(select(User.timezone)) == "Asia/Kolkata"


def test_a_saved_old_zone_name_shows_picked_and_saves_as_the_canonical_one(
    client, db, make_user
):
    user = make_user(name="Ana Ruiz", timezone="US/Eastern")
    login(client, user)
    page = client.get("/settings/").get_data(as_text=True)
    assert re.search(r'<option selected value="America/New_York">|'
                     r'<option value="America/New_York" selected', page)
    response = client.submit("/settings/", {"name": "Ana Ruiz", "timezone": "US/Eastern"})
    assert response.status_code == 302
    db.session.expire_all()
    assert db.session.get(User, user.id).timezone == "America/New_York"


def test_a_saved_zone_with_no_offered_equal_stays_a_choice(client, db, make_user):
    user = make_user(name="Ana Ruiz", timezone="Etc/GMT+5")
    login(client, user)
    page = client.get("/settings/").get_data(as_text=True)
    assert '<optgroup label="Your current zone">' in page
    response = client.submit("/settings/", {"name": "Ana M. Ruiz", "timezone": "Etc/GMT+5"})
    assert response.status_code == 302
    db.session.expire_all()
    assert db.session.get(User, user.id).timezone == "Etc/GMT+5"
    # Someone else cannot pick it: it is not on the list.
    other = make_user(name="Other")
    client.submit("/auth/logout")
    login(client, other)
    refused = client.submit("/settings/", {"name": "Other", "timezone": "Etc/GMT+5"})
    assert "Not a valid choice" in refused.get_data(as_text=True)


# --- in Chromium ---------------------------------------------------------------------


@pytest.mark.browser
@pytest.mark.parametrize(("browser_zone", "picked"), [
    ("America/New_York", "America/New_York"),
    # Chromium may report an old name (its ICU does for India): it reads as the new one.
    ("Asia/Calcutta", "Asia/Kolkata"),
])
def test_sign_up_picks_the_browsers_zone_and_the_filter_finds_zones(
    app, browser, db, browser_zone, picked
):
    context = browser.new_context(viewport={"width": 390, "height": 844},
                                  timezone_id=browser_zone)
    context.set_default_timeout(10_000)
    page = context.new_page()
    try:
        with serve_in_thread(app) as url:
            page.goto(f"{url}/auth/register")
            zone = page.locator("select#timezone")
            assert zone.input_value() == picked
            assert "Picked from your browser" in page.locator("#timezone-picked").inner_text()
            search = page.get_by_label("Search zones by city or region")
            search.fill("new y")
            assert zone.input_value() == "America/New_York"
            assert zone.locator("option").all_inner_texts() == [
                text for text in zone.locator("option").all_inner_texts() if "New York" in text
            ] and zone.locator("option").count() == 1
            search.fill("york")
            assert zone.input_value() == "America/New_York"
            search.fill("tokyo")
            assert zone.input_value() == "Asia/Tokyo"
            assert "1 time zone matches" in page.locator("#timezone-filter-status").inner_text()
            assert page.locator("#timezone-picked").is_hidden()  # no longer the browser's
            shot(page, f"zone-filter-{picked.replace('/', '-')}")
            search.fill("")
            assert zone.locator("optgroup").count() == 11  # every region back
            assert zone.input_value() == "Asia/Tokyo"  # the pick stays
            # Enter in the search box moves to the list rather than sending the form.
            search.fill("kolkata")
            search.press("Enter")
            assert page.url.endswith("/auth/register")
            assert page.evaluate("document.activeElement.id") == "timezone"
            page.get_by_label("Full name").fill("Ana Ruiz")
            page.get_by_label("Email").fill("ana@example.com")
            page.get_by_label("Password", exact=True).fill("a-long-password")
            page.get_by_label("Repeat password").fill("a-long-password")
            page.get_by_role("button", name="Create account").click()
            page.wait_for_url(f"{url}/contracts/")
    finally:
        context.close()
    assert db.session.scalar(select(User.timezone)) == "Asia/Kolkata"


def test_pages_listing_times_name_the_viewers_zone_with_a_way_to_change_it(
    client, make_user, clock
):
    clock.freeze(datetime(2027, 1, 15, 12, 0, tzinfo=UTC))
    user = make_user(name="Ana Ruiz", timezone="America/New_York")
    login(client, user)
    for url in ("/schedule", "/payments"):
        page = client.get(url).get_data(as_text=True)
        note = page[page.index('id="zone-note"'):]
        note = note[:note.index("</p>")]
        assert '<strong class="text-nowrap">New York (EST)</strong>' in note, url
        assert '<a href="/settings/">change' in note, url
