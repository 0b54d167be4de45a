"""JSON transcodings for the domain's value objects (snapshots and events hold them)."""

from __future__ import annotations

from datetime import date
from typing import Any

from eventsourcing.persistence import JSONTranscoder, Transcoding

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


class DateAsISO(Transcoding):
    """date <-> ISO 8601 string."""

    type = date
    name = "date_iso"

    def encode(self, obj: date) -> str:
        return obj.isoformat()

    def decode(self, data: str) -> date:
        return date.fromisoformat(data)


def register_domain_transcodings(transcoder: JSONTranscoder) -> None:
    """Teach the transcoder every value object the domain stores."""
    for transcoding in (
        MembershipAsDict(),
        SignatureAsDict(),
        ExternalRequestAsDict(),
        QuietHoursAsDict(),
        DigestScheduleAsDict(),
        DateAsISO(),
    ):
        transcoder.register(transcoding)
