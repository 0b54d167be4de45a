"""The org's comms settings: `GET/PUT /api/orgs/current/comms`.

PUT replaces the whole settings object in one atomic command: every field is checked first
(a bad one is a 422 problem and nothing changes), then one event per setting that changed.
GET is for anyone in the org who may view its settings, PUT for org owners and admins. Both
answer with the next digest slot, in UTC and in the org's timezone. The older partial
`PATCH /api/org/settings` stays.
"""

from __future__ import annotations

from fastapi import APIRouter

from application.comms_reads import next_digest_window
from interfaces.http.deps import AppDep, CtxDep
from interfaces.http.models.comms import CommsSettingsIn, CommsSettingsOut, comms_settings_out
from interfaces.http.problems import error_responses

router = APIRouter(prefix="/api/orgs/current", tags=["org"])


@router.get("/comms", responses=error_responses(401, 403, 404))
def get_comms_settings(app: AppDep, ctx: CtxDep) -> CommsSettingsOut:
    """The org's timezone, quiet hours, daily cap, digest slot, and the next digest."""
    org = app.get_org(ctx=ctx)
    return comms_settings_out(
        org.comms, next_digest_window(org.comms, app.clock.now()), version=org.version
    )


@router.put("/comms", responses=error_responses(401, 403, 404, 409, 422))
def replace_comms_settings(body: CommsSettingsIn, app: AppDep, ctx: CtxDep) -> CommsSettingsOut:
    """Replace every comms setting (org owners and admins); events only for what changed."""
    result = app.replace_comms_settings(ctx=ctx, settings=body.settings())
    org = app.get_org(ctx=ctx)
    return comms_settings_out(
        org.comms,
        next_digest_window(org.comms, app.clock.now()),
        version=org.version,
        position=result.position,
    )
