"""A request's JSON bytes to a validated `PredictionRequest` in one pass, at C speed: a msgspec
Struct generated from the spec parses and type-checks the JSON together (ranges, lengths, unknown
fields); a few lines of Python finish what msgspec cannot say (categories stripped, missing markers,
number-like categories as text, the label, the request id's characters).

Anything the fast path does not accept whole is handed to the checked path (`decode_object` +
`PredictionRequest.from_dict`), which raises the exact error code and message it always has: the
fast path only ever accepts what the checked one accepts, with the same values (a test compares
the two on every case of the bad-input tables and on random requests), so errors cost two parses
and valid requests one."""

from __future__ import annotations

from collections.abc import Callable
from functools import lru_cache
from typing import Annotated, Any

import msgspec

from utils.form import MAX_TEXT_LENGTH, Form, number_text
from utils.messages.codec import MessageError, decode_object
from utils.messages.requests import MAX_REQUEST_ID_LENGTH, PredictionRequest

_Text = Annotated[str, msgspec.Meta(max_length=MAX_TEXT_LENGTH)]


class _Fallback(Exception):
    """The fast path does not vouch for this request: the checked path decides."""


class RequestDecoder:
    def __init__(self, form: Form):
        self.form = form
        spec = form.spec
        fields: list[tuple[str, Any, Any]] = []
        finish: list[tuple[int, Callable[[Any], Any]]] = []  # the values msgspec's alone are not
        for index, item in enumerate(spec.fields):
            if item.kind == "numeric":
                kind: Any = Annotated[float, msgspec.Meta(ge=float(item.minimum or 0.0), le=float(item.maximum or 0.0))]
                if not item.required and not item.nullable:
                    finish.append((index, _present))
            else:
                kind = _Text | int | float if item.number_like else _Text
                finish.append((index, _categorical(frozenset(item.missing), item.nullable)))
            if item.nullable:
                kind = kind | None
            # Absent is allowed only where the checked path allows it: not required (then it is
            # None, which the finisher refuses unless the field is nullable).
            default = msgspec.field(name=item.name) if item.required else msgspec.field(name=item.name, default=None)
            fields.append((f"f{index}", kind, default))
        fields.append(("label", Any, msgspec.field(name=spec.label.column, default=None)))
        data = msgspec.defstruct("Data", fields, forbid_unknown_fields=True, kw_only=True)
        request = msgspec.defstruct(
            "Request",
            [("request_id", str), ("data", data), ("explain", bool, False)],
            forbid_unknown_fields=True,
        )
        self._decoder = msgspec.json.Decoder(request)
        self._names = form.field_names
        self._finish = tuple(finish)

    def decode(self, raw: bytes | None) -> tuple[PredictionRequest, bytes | dict]:
        """The request, and what a challenger of another form re-reads (the bytes, when the fast
        path read them; the checked path's JSON object otherwise). MessageError as the checked
        path raises it."""
        if raw is not None:
            try:
                return self._fast(raw), raw
            except (msgspec.DecodeError, msgspec.ValidationError, _Fallback, MessageError):
                pass
        payload = decode_object(raw)
        return PredictionRequest.from_dict(payload, self.form), payload

    def _fast(self, raw: bytes) -> PredictionRequest:
        request: Any = self._decoder.decode(raw)
        request_id = request.request_id
        if not request_id.strip() or len(request_id) > MAX_REQUEST_ID_LENGTH or not request_id.isprintable():
            raise _Fallback
        values = list(msgspec.structs.astuple(request.data))
        for index, finish in self._finish:
            values[index] = finish(values[index])
        label = values.pop()
        features = dict(zip(self._names, values, strict=True))
        return PredictionRequest(
            request_id, features, None if label is None else self.form.label_of(label), request.explain
        )


def _present(value: Any) -> Any:
    """A numeric field that may be absent but not null: absent (None here), the checked path refuses it."""
    if value is None:
        raise _Fallback
    return value


def _categorical(markers: frozenset[str], nullable: bool) -> Callable[[Any], Any]:
    def finish(value: Any) -> Any:
        if isinstance(value, str):
            text = value.strip()
            return None if text in markers else text
        if value is None:
            if not nullable:
                raise _Fallback
            return None
        return number_text(value)

    return finish


@lru_cache(maxsize=16)
def decoder_of(form: Form) -> RequestDecoder:
    """One decoder per form (a form lives as long as the versions that take it)."""
    return RequestDecoder(form)
