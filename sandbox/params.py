"""Request parameters the way Stripe reads them.

The SDK form-encodes nested parameters with brackets
(`line_items[0][price_data][unit_amount]=5000`, `expand[0]=payment_intent`,
and `expand[]=...` when it follows a list's `url`). `decode` turns such pairs
into nested dicts; a schema (`Obj`, `Str`, `Int`, ...) then validates and
coerces them, raising the same errors as Stripe for unknown parameters, wrong
types, empty strings and missing required ones, with `param` naming the
offending parameter in bracket form.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Any

from sandbox.errors import ParamError

_KEY = re.compile(r"^([^\[\]]+)((?:\[[^\[\]]*\])*)$")


def decode(pairs: Iterable[tuple[str, str]]) -> dict[str, Any]:
    """Nest bracketed form keys; `[]` appends. Lists stay dicts keyed by index until validated."""
    root: dict[str, Any] = {}
    for raw_key, value in pairs:
        match = _KEY.match(raw_key)
        if not match:
            raise ParamError(f"Invalid parameter name: {raw_key}", raw_key)
        parts = [match.group(1), *re.findall(r"\[([^\[\]]*)\]", match.group(2))]
        node = root
        for i, part in enumerate(parts[:-1]):
            nxt = parts[i + 1]
            if part == "":
                raise ParamError(f"Invalid parameter name: {raw_key}", raw_key)
            child = node.get(part)
            if nxt == "":
                # `key[]` collects repeated values into a list.
                if not isinstance(child, list):
                    if child is not None:
                        raise ParamError(f"Invalid array: {raw_key}", raw_key)
                    child = node[part] = []
                if i + 1 != len(parts) - 1:
                    raise ParamError(f"Invalid parameter name: {raw_key}", raw_key)
                child.append(value)
                break
            if not isinstance(child, dict):
                if child is not None:
                    raise ParamError(f"Invalid hash: {_bracket(parts[: i + 1])}",
                                     _bracket(parts[: i + 1]))
                child = node[part] = {}
            node = child
        else:
            last = parts[-1]
            if isinstance(node.get(last), (dict, list)):
                raise ParamError(f"Invalid hash: {_bracket(parts)}", _bracket(parts))
            node[last] = value
    return root


def _bracket(parts: list[str]) -> str:
    return parts[0] + "".join(f"[{p}]" for p in parts[1:])


def _name(path: str, key: str) -> str:
    return f"{path}[{key}]" if path else key


class Field:
    def __init__(self, required: bool = False) -> None:
        self.required = required

    def coerce(self, value: Any, param: str) -> Any:  # pragma: no cover - interface
        raise NotImplementedError

    @staticmethod
    def _scalar(value: Any, param: str, kind: str) -> str:
        if isinstance(value, (dict, list)):
            raise ParamError(f"Invalid {kind}: {param} must be a {kind}, not a hash or array",
                             param)
        if value == "":
            raise ParamError(
                f"You passed an empty string for '{param}'. We assume empty values are an "
                f"attempt to unset a parameter; however '{param}' cannot be unset. You should "
                f"remove '{param}' from your request or supply a non-empty value.",
                param, "parameter_invalid_empty")
        return str(value)


class Str(Field):
    def __init__(self, required: bool = False, max_length: int = 5000) -> None:
        super().__init__(required)
        self.max_length = max_length

    def coerce(self, value: Any, param: str) -> str:
        text = self._scalar(value, param, "string")
        if len(text) > self.max_length:
            raise ParamError(f"Invalid string: {text[:20]}...; must be at most "
                             f"{self.max_length} characters", param, "string_length_exceeded")
        return text


class Int(Field):
    def __init__(self, required: bool = False, minimum: int | None = None,
                 maximum: int | None = None) -> None:
        super().__init__(required)
        self.minimum, self.maximum = minimum, maximum

    def coerce(self, value: Any, param: str) -> int:
        text = self._scalar(value, param, "integer")
        if not re.fullmatch(r"-?\d+", text):
            raise ParamError(f"Invalid integer: {text}", param, "parameter_invalid_integer")
        number = int(text)
        if self.minimum is not None and number < self.minimum:
            raise ParamError(f"This value must be greater than or equal to {self.minimum}.",
                             param, "parameter_invalid_integer")
        if self.maximum is not None and number > self.maximum:
            raise ParamError(f"This value must be less than or equal to {self.maximum}.",
                             param, "parameter_invalid_integer")
        return number


class Bool(Field):
    def coerce(self, value: Any, param: str) -> bool:
        text = self._scalar(value, param, "boolean")
        if text not in ("true", "false"):
            raise ParamError(f"Invalid boolean: {text}", param)
        return text == "true"


class BoolOr(Field):
    """A boolean that also takes some named values, true either way (Stripe's `off_session`:
    true, false, one_off or recurring). Gives True, False or the name."""

    def __init__(self, *names: str, required: bool = False) -> None:
        super().__init__(required)
        self.names = names

    def coerce(self, value: Any, param: str) -> bool | str:
        text = self._scalar(value, param, "boolean")
        if text in self.names:
            return text
        if text not in ("true", "false"):
            raise ParamError(f"Invalid {param}: must be one of true, false, "
                             f"{', '.join(self.names)}", param)
        return text == "true"


class Unsettable(Str):
    """A string that an empty value unsets (None), as on Stripe's update endpoints."""

    def coerce(self, value: Any, param: str) -> str | None:  # type: ignore[override]
        if value == "":
            return None
        return super().coerce(value, param)


class OrUnset(Field):
    """A hash (or other field) that an empty value unsets (None), as `pause_collection=''`
    resumes a subscription's collection."""

    def __init__(self, inner: Field) -> None:
        super().__init__(inner.required)
        self.inner = inner

    def coerce(self, value: Any, param: str) -> Any:
        if value == "":
            return None
        return self.inner.coerce(value, param)


class Enum(Field):
    def __init__(self, *choices: str, required: bool = False) -> None:
        super().__init__(required)
        self.choices = choices

    def coerce(self, value: Any, param: str) -> str:
        text = self._scalar(value, param, "string")
        if text not in self.choices:
            *head, tail = self.choices
            listed = f"{', '.join(head)}, or {tail}" if head else tail
            raise ParamError(f"Invalid {param}: must be one of {listed}", param)
        return text


class Metadata(Field):
    """Stripe metadata: up to 50 string keys (40 chars) with string values (500 chars).

    On create an empty value just leaves the key out. On update (`unset=True`) it
    unsets the key, kept as None for the merge, and an empty `metadata` (None)
    unsets them all, as Stripe's update endpoints do.
    """

    def __init__(self, required: bool = False, unset: bool = False) -> None:
        super().__init__(required)
        self.unset = unset

    def coerce(self, value: Any, param: str) -> dict[str, str | None] | None:
        if value == "":
            return None if self.unset else {}
        if not isinstance(value, dict):
            raise ParamError(f"Invalid hash: {param}", param)
        if len(value) > 50:
            raise ParamError("Metadata can have up to 50 keys.", param)
        out = {}
        for key, item in value.items():
            name = _name(param, key)
            if isinstance(item, (dict, list)):
                raise ParamError(f"Invalid value for {name}: metadata values must be strings",
                                 name)
            if len(key) > 40:
                raise ParamError(f"Metadata keys can be at most 40 characters ({key}).", name)
            if len(item) > 500:
                raise ParamError(f"Metadata values can be at most 500 characters ({key}).", name)
            if item != "":
                out[key] = item
            elif self.unset:  # an empty value unsets the key
                out[key] = None
        return out


class List(Field):
    def __init__(self, item: Field, required: bool = False, max_items: int = 100) -> None:
        super().__init__(required)
        self.item, self.max_items = item, max_items

    def coerce(self, value: Any, param: str) -> list[Any]:
        if isinstance(value, dict):
            # Indexed form (`key[0]`, `key[1]`): indices must be integers.
            for index in value:
                if not index.isdigit():
                    raise ParamError(f"Invalid array: {param}", param)
            items = [(int(k), v) for k, v in value.items()]
            items.sort()
        elif isinstance(value, list):
            items = list(enumerate(value))
        elif value == "":
            items = []
        else:
            raise ParamError(f"Invalid array: {param}", param)
        if len(items) > self.max_items:
            raise ParamError(f"Invalid array: {param} can have at most {self.max_items} items",
                             param)
        return [self.item.coerce(v, f"{param}[{i}]") for i, v in items]


class Obj(Field):
    def __init__(self, fields: dict[str, Field], required: bool = False) -> None:
        super().__init__(required)
        self.fields = fields

    def coerce(self, value: Any, param: str) -> dict[str, Any]:
        if not isinstance(value, dict):
            raise ParamError(f"Invalid object: {param or 'parameters'}", param or None)
        out: dict[str, Any] = {}
        for key, item in value.items():
            name = _name(param, key)
            field = self.fields.get(key)
            if field is None:
                raise ParamError(f"Received unknown parameter: {name}", name, "parameter_unknown")
            out[key] = field.coerce(item, name)
        for key, field in self.fields.items():
            if field.required and key not in out:
                name = _name(param, key)
                raise ParamError(f"Missing required param: {name}.", name, "parameter_missing")
        return out


EXPAND = List(Str())
PAGINATION: dict[str, Field] = {
    "limit": Int(minimum=1, maximum=100),
    "starting_after": Str(),
    "ending_before": Str(),
    "expand": EXPAND,
}
CREATED_RANGE = Obj({"gt": Int(), "gte": Int(), "lt": Int(), "lte": Int()})


class Created(Field):
    """`created` filters: either an exact timestamp or a range hash."""

    def coerce(self, value: Any, param: str) -> dict[str, int]:
        if isinstance(value, dict):
            return CREATED_RANGE.coerce(value, param)
        return {"eq": Int().coerce(value, param)}


def validate(schema: dict[str, Field], raw: dict[str, Any]) -> dict[str, Any]:
    return Obj(schema).coerce(raw, "")
