"""JSON transcodings for the domain's value objects (snapshots and events hold them)."""

from __future__ import annotations

from datetime import date
from typing import Any

from eventsourcing.persistence import JSONTranscoder, Transcoding

from domain.digest_subscription import Subscriber
from domain.errors import InvalidValueError
from domain.org import DigestSchedule, QuietHours, Weekday
from domain.project import Membership
from domain.roles import Role
from domain.signoff import Decision, ExternalRequest, ExternalStatus, Signature


class MembershipAsDict(Transcoding):
    """Membership <-> {role, signer}."""

    type = Membership
    name = "membership"

    def encode(self, obj: Membership) -> dict[str, Any]:
        return {"role": obj.role.value, "signer": obj.signer}

    def decode(self, data: dict[str, Any]) -> Membership:
        return Membership(role=Role(data["role"]), signer=bool(data["signer"]))


class SignatureAsDict(Transcoding):
    """Signature <-> dict."""

    type = Signature
    name = "signature"

    def encode(self, obj: Signature) -> dict[str, Any]:
        return {
            "signer": obj.signer,
            "external": obj.external,
            "name": obj.name,
            "decision": obj.decision.value,
            "comment": obj.comment,
            "at": obj.at,
            "ip": obj.ip,
            "user_agent": obj.user_agent,
        }

    def decode(self, data: dict[str, Any]) -> Signature:
        return Signature(
            signer=data["signer"],
            external=data["external"],
            name=data["name"],
            decision=Decision(data["decision"]),
            comment=data["comment"],
            at=data["at"],
            ip=data["ip"],
            user_agent=data["user_agent"],
        )


class ExternalRequestAsDict(Transcoding):
    """ExternalRequest <-> dict (the token hash only; tokens are never stored)."""

    type = ExternalRequest
    name = "external_request"

    def encode(self, obj: ExternalRequest) -> dict[str, Any]:
        return {
            "request_id": obj.request_id,
            "email": obj.email,
            "token_hash": obj.token_hash,
            "expires_at": obj.expires_at,
            "status": obj.status.value,
        }

    def decode(self, data: dict[str, Any]) -> ExternalRequest:
        return ExternalRequest(
            request_id=data["request_id"],
            email=data["email"],
            token_hash=data["token_hash"],
            expires_at=data["expires_at"],
            status=ExternalStatus(data["status"]),
        )


class QuietHoursAsDict(Transcoding):
    """QuietHours <-> {start, end}."""

    type = QuietHours
    name = "quiet_hours"

    def encode(self, obj: QuietHours) -> dict[str, Any]:
        return {"start": obj.start, "end": obj.end}

    def decode(self, data: dict[str, Any]) -> QuietHours:
        return QuietHours(start=data["start"], end=data["end"])


class DigestScheduleAsDict(Transcoding):
    """DigestSchedule <-> {weekday, at}."""

    type = DigestSchedule
    name = "digest_schedule"

    def encode(self, obj: DigestSchedule) -> dict[str, Any]:
        return {"weekday": obj.weekday.value, "at": obj.at}

    def decode(self, data: dict[str, Any]) -> DigestSchedule:
        return DigestSchedule(weekday=Weekday(data["weekday"]), at=data["at"])


class SubscriberAsDict(Transcoding):
    """Subscriber <-> {address, user_id, since} (a digest recipient)."""

    type = Subscriber
    name = "digest_subscriber"

    def encode(self, obj: Subscriber) -> dict[str, Any]:
        return {"address": obj.address, "user_id": obj.user_id, "since": obj.since}

    def decode(self, data: dict[str, Any]) -> Subscriber:
        return Subscriber(address=data["address"], user_id=data["user_id"], since=data["since"])


class DateAsISO(Transcoding):
    """date <-> ISO 8601 string."""

    type = date
    name = "date_iso"

    def encode(self, obj: date) -> str:
        return obj.isoformat()

    def decode(self, data: str) -> date:
        return date.fromisoformat(data)


# The library writes a value object as {"_type_": name, "_data_": data} and reads back every
# JSON object with exactly those two keys as one. A map keyed by user input (members by user
# id, signatures by signer) whose keys happen to be exactly "_type_" and "_data_" would be read
# as a wrapper: the aggregate could no longer load. Such a map is written as this wrapper
# around its list of [key, value] pairs instead, so no user-keyed object is ever ambiguous.
ESCAPED_MAP = "map_pairs"
_WRAPPER_KEYS = frozenset({"_type_", "_data_"})
# Events are hashed over their RFC 8785 canonical JSON, which holds I-JSON integers only.
MAX_STORABLE_INT = 2**53 - 1


class UnstorableValueError(InvalidValueError):
    """A value no event can hold: text that is not valid Unicode, an integer beyond I-JSON.

    Inputs are checked where they arrive (the HTTP models); this is the last line, so that
    whatever slips through is refused (422) instead of failing in the store (500).
    """


def escaped(value: Any) -> Any:
    """`value` with every object that would read back as a wrapper written as ESCAPED_MAP.

    Copies only what changes: a value without such an object is returned as it is. Refuses
    an integer the log cannot hold (UnstorableValueError).
    """
    if type(value) is int and not -MAX_STORABLE_INT <= value <= MAX_STORABLE_INT:
        raise UnstorableValueError("an integer is too large to be stored (2^53 - 1 at most)")
    if isinstance(value, dict):
        if len(value) == 2 and value.keys() == _WRAPPER_KEYS:
            return {"_type_": ESCAPED_MAP, "_data_": [[k, escaped(v)] for k, v in value.items()]}
        changed: dict[Any, Any] | None = None
        for key, item in value.items():
            new = escaped(item)
            if new is not item:
                if changed is None:
                    changed = dict(value)
                changed[key] = new
        return value if changed is None else changed
    if isinstance(value, list | tuple):
        items = [escaped(item) for item in value]
        if all(new is old for new, old in zip(items, value, strict=True)):
            return value
        return items
    return value


class TeaimTranscoder(JSONTranscoder):
    """The library's JSON transcoder, made unambiguous for maps keyed by user input.

    Writes escape every plain object shaped like a wrapper (see `escaped`); reads unescape it.
    Snapshots written before the escape hold such a map unescaped, but only ever with value
    objects as values, which are decoded first (the decoder works inside out): a "_type_"
    that is not a string can only be such a map, and is read back as the map it is.
    """

    def encode(self, obj: Any) -> bytes:
        """Encode, escaping wrapper-shaped objects first; refuse what cannot be stored."""
        try:
            return super().encode(escaped(obj))
        except UnicodeEncodeError:
            raise UnstorableValueError("text must be valid Unicode (no lone surrogates)") from None

    def _encode_obj(self, o: Any) -> dict[str, Any]:
        # A value object's own data may hold a user-keyed map too.
        wrapper = super()._encode_obj(o)
        wrapper["_data_"] = escaped(wrapper["_data_"])
        return wrapper

    def _decode_obj(self, d: dict[str, Any]) -> Any:
        if len(d) == 2 and d.keys() == _WRAPPER_KEYS:
            kind = d["_type_"]
            if kind == ESCAPED_MAP:
                return dict(d["_data_"])
            if not isinstance(kind, str):
                return d  # an unescaped user-keyed map from before the escape
        return super()._decode_obj(d)


def register_domain_transcodings(transcoder: JSONTranscoder) -> None:
    """Teach the transcoder every value object the domain stores."""
    for transcoding in (
        MembershipAsDict(),
        SignatureAsDict(),
        ExternalRequestAsDict(),
        QuietHoursAsDict(),
        DigestScheduleAsDict(),
        DateAsISO(),
        SubscriberAsDict(),
    ):
        transcoder.register(transcoding)
