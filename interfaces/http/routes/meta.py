"""The role matrix and health routes."""

from __future__ import annotations

from fastapi import APIRouter

from domain.roles import LEGEND, MATRIX, ORG_MATRIX, RANK, Permission, Role
from interfaces.http.models import RoleMatrixOut, RoleOut

router = APIRouter(tags=["meta"])


@router.get("/api/roles/matrix")
def role_matrix() -> RoleMatrixOut:
    """The role matrix every guard enforces, with a legend per role."""
    return RoleMatrixOut(
        roles=[
            RoleOut(
                role=role,
                rank=RANK[role],
                legend=LEGEND[role],
                permissions=[p for p in Permission if p in MATRIX[role]],
                org_permissions=sorted(p.value for p in ORG_MATRIX[role]),
            )
            for role in Role
        ],
        permissions=list(Permission),
        signer_toggle="A member with the signer toggle on also holds 'sign', whatever the role.",
    )


@router.get("/api/health")
def health() -> dict[str, str]:
    """Liveness: the process answers."""
    return {"status": "ok"}
