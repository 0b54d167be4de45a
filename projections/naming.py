"""Stable dotted action names (`stage.signed_off`) for stored event topics."""

from __future__ import annotations

import re
from functools import cache

_CAMEL = re.compile(r"(?<=[a-z0-9])(?=[A-Z])")

# Where the derived name would read badly or an aggregate is named for its purpose.
OVERRIDES: dict[str, str] = {
    "SecurityDenial.Recorded": "security.denied",
    "ProjectCodeClaim.Created": "project.code_claimed",
    "SignOff.Created": "signoff.opened",
    "Stage.SignOffRequested": "stage.signoff_requested",
    "Artifact.Registered": "artifact.registered",
    "ProjectSeal.Started": "audit.seal_started",
    "ProjectSeal.Sealed": "audit.sealed",
    "AuditAccess.Recorded": "audit.read",
}


def snake(name: str) -> str:
    """CamelCase to snake_case."""
    return _CAMEL.sub("_", name).lower()


@cache
def action_name(topic: str) -> str:
    """`domain.stage:Stage.SignedOff` -> `stage.signed_off`."""
    qualname = topic.rpartition(":")[2]
    if qualname in OVERRIDES:
        return OVERRIDES[qualname]
    aggregate, _, event = qualname.partition(".")
    return f"{snake(aggregate).replace('_', '')}.{snake(event)}"
