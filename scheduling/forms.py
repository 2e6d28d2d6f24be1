"""Forms for booking, rescheduling, meeting places and working hours."""

from __future__ import annotations

import re
from datetime import datetime

from flask_wtf import FlaskForm
from wtforms import (
    DateField,
    FieldList,
    Form,
    FormField,
    RadioField,
    SelectChoice,
    SelectField,
    StringField,
    SubmitField,
    TextAreaField,
)
from wtforms.validators import (
    InputRequired,
    Length,
    Optional,
    ValidationError,
)

from scheduling.availability import (
    DAY_MINUTES,
    HOURS_STEP_MINUTES,
    WEEKDAY_NAMES,
    WeeklyHours,
    Window,
    clock_label,
    parse_slot,
)


class SlotField(RadioField):
    """One of the free slots a page offers, posted as its UTC start ("2027-03-30T07:00Z").

    The choices are not fixed: the page lists the slots free when it was drawn, and the
    service decides under its locks whether the posted one still is (a slot taken
    meanwhile gets the service's message, not "Not a valid choice").
    """

    def __init__(self, label: str = "Time", **kwargs) -> None:
        kwargs.setdefault("validators", [InputRequired(message="Pick a time for the session.")])
        super().__init__(label, validate_choice=False, **kwargs)

    def post_validate(self, form, validation_stopped: bool) -> None:
        if not validation_stopped and self.starts_at is None:
            self.errors.append("Pick one of the times offered.")

    @property
    def starts_at(self) -> datetime | None:
        return parse_slot(self.data)


class SessionForm(FlaskForm):
    """Book a session: one of the free slots, a note and this session's own meeting place."""

    slot = SlotField()
    note = TextAreaField(
        "Note for the session (optional)",
        validators=[Optional(), Length(max=500)],
        render_kw={"rows": 2, "placeholder": "What would you like to focus on?"},
    )
    location = StringField(
        "Meeting place for this session (optional)",
        # Through a lambda: `_one_line` is defined further down, with the meeting place's form.
        filters=[lambda value: _one_line(value)],
        validators=[Optional(), Length(max=500)],
        description="Only if this session is somewhere else than the contract's usual place: "
        "a video-call address (https://…) or a place.",
    )
    submit = SubmitField("Book session")

    def validate_location(self, field: StringField) -> None:
        # The same rule as the contract's meeting place: only http(s) addresses as links.
        MeetingPlaceForm.validate_meeting_location(self, field)  # type: ignore[arg-type]


_SCHEME_NAME = re.compile(r"[a-z][a-z0-9+.-]*")
# Schemes refused even with a space after the colon ("javascript: ..."): they run code
# or read files. Any other word followed by a colon and a space ("Zoom: 812 3456") is text.
_NEVER = ("javascript", "vbscript", "data", "file")


def _one_line(value: str | None) -> str | None:
    # Calendar apps show LOCATION on one line; runs of spaces and line breaks become one space.
    return " ".join(value.split()) if value else value


class MeetingPlaceForm(FlaskForm):
    """Where a contract's sessions take place: a web address or a place; empty clears it."""

    meeting_location = StringField(
        "Where the sessions take place",
        filters=[_one_line],
        validators=[Optional(), Length(max=500)],
        description="A video-call address (https://…) or a place. Leave it empty to clear it.",
        render_kw={"placeholder": "https://meet.example.com/abc or Café Central, Vienna"},
    )
    submit = SubmitField("Save the meeting place")

    def validate_meeting_location(self, field: StringField) -> None:
        # Only http(s) addresses ever become links; any other scheme is refused outright
        # rather than stored as text that looks like a link.
        scheme, colon, rest = (field.data or "").partition(":")
        scheme = scheme.strip().lower()
        if not colon or not _SCHEME_NAME.fullmatch(scheme) or scheme in ("http", "https"):
            return
        if scheme in _NEVER or not rest[:1].isspace():
            raise ValidationError(
                "Only web addresses starting with http:// or https:// can be given; "
                "for a place, write its name or street address."
            )


# --- coach availability and rescheduling -----------------------------------------

# Every quarter hour of the day, and its end ("24:00"); empty = no window.
_CLOCK_CHOICES = [
    SelectChoice(clock_label(minute), clock_label(minute))
    for minute in range(0, DAY_MINUTES + 1, HOURS_STEP_MINUTES)
]


def _minute(value: str | None) -> int | None:
    if not value:
        return None
    hours, _, minutes = value.partition(":")
    return int(hours) * 60 + int(minutes)


class DayHoursForm(Form):
    """One weekday's working hours: off, or one or two windows (from–to)."""

    first_from = SelectField("From", choices=[SelectChoice("", "Off"), *_CLOCK_CHOICES])
    first_to = SelectField("To", choices=[SelectChoice("", "—"), *_CLOCK_CHOICES])
    second_from = SelectField("Then from", choices=[SelectChoice("", "—"), *_CLOCK_CHOICES])
    second_to = SelectField("To", choices=[SelectChoice("", "—"), *_CLOCK_CHOICES])

    def validate(self, extra_validators=None) -> bool:
        if not super().validate(extra_validators):
            return False
        first = self._window(self.first_from, self.first_to)
        second = self._window(self.second_from, self.second_to)
        if first is False or second is False:
            return False
        if second and not first:
            self.second_from.errors.append("Set the first window before a second one.")
            return False
        if isinstance(first, tuple) and isinstance(second, tuple) and second[0] < first[1]:
            self.second_from.errors.append("The second window starts after the first one ends.")
            return False
        return True

    @staticmethod
    def _window(start: SelectField, end: SelectField) -> Window | None | bool:
        """The window, None when both ends are empty, False (with an error) when invalid."""
        begin, finish = _minute(start.data), _minute(end.data)
        if begin is None and finish is None:
            return None
        if begin is None or finish is None:
            (end if finish is None else start).errors.append("Give both ends of the window.")
            return False
        if finish <= begin:
            end.errors.append("The end time must be after the start time.")
            return False
        return begin, finish

    @property
    def windows(self) -> list[Window]:
        spans = [
            (_minute(self.first_from.data), _minute(self.first_to.data)),
            (_minute(self.second_from.data), _minute(self.second_to.data)),
        ]
        return [(a, b) for a, b in spans if a is not None and b is not None]


class WorkingHoursForm(FlaskForm):
    """The coach's week: one DayHoursForm per weekday, Monday first."""

    days = FieldList(FormField(DayHoursForm), min_entries=7, max_entries=7)
    submit = SubmitField("Save working hours")

    @classmethod
    def for_hours(cls, hours: WeeklyHours) -> WorkingHoursForm:
        """The form filled with `hours` (a POST's own data wins, as with any FlaskForm)."""
        days = []
        for weekday in range(7):
            spans = [*hours.on(weekday), (None, None), (None, None)]
            (a, b), (c, d) = spans[0], spans[1]
            days.append({
                "first_from": clock_label(a) if a is not None else "",
                "first_to": clock_label(b) if b is not None else "",
                "second_from": clock_label(c) if c is not None else "",
                "second_to": clock_label(d) if d is not None else "",
            })
        return cls(data={"days": days})

    def validate(self, extra_validators=None) -> bool:
        if not super().validate(extra_validators):
            return False
        if not any(day.form.windows for day in self.days):
            # No rows at all would mean "never set": the default hours again.
            self.form_errors.append(
                "Keep at least one working window. To stop taking sessions for a while, "
                "add days off instead."
            )
            return False
        return True

    @property
    def windows(self) -> dict[int, list[Window]]:
        return {weekday: day.form.windows for weekday, day in enumerate(self.days)}

    @staticmethod
    def day_name(weekday: int) -> str:
        return WEEKDAY_NAMES[weekday]


class DayOffForm(FlaskForm):
    """A day the coach takes no sessions (a date on the coach's own calendar)."""

    day = DateField("Date", validators=[InputRequired(message="Give the date of the day off.")])
    note = StringField(
        "Note (optional, only you see it)",
        validators=[Optional(), Length(max=200)],
        render_kw={"placeholder": "Holiday, conference, …"},
    )
    submit = SubmitField("Add day off")


class RescheduleForm(FlaskForm):
    """Move a session to another free slot."""

    slot = SlotField("New time")
    submit = SubmitField("Move the session")
