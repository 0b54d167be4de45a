"""A project with one of everything, built through the HTTP API, and ids to fill any route."""

from __future__ import annotations

from dataclasses import dataclass
from uuid import UUID, uuid4

from domain.roles import Role
from domain.stamps import Stamp
from tests.api.conftest import Api, dev
from tests.api.routes import RouteSpec
from tests.support.ingest_doubles import needs_ocr_artifact
from tests.support.retrieval import give_content
from tests.support.sample_site import sample_url
from tests.support.uploads import upload


@dataclass(frozen=True)
class Scene:
    """A populated project: a draft stage, a stage in review with a pending external link,
    an artifact, an open and a closed RAID item, a memory, and a plain member."""

    org: UUID
    owner: str
    project: UUID
    stage_draft: UUID
    stage_review: UUID
    signoff: UUID
    external_request: UUID
    token: str
    artifact: UUID
    raid_open: UUID
    raid_closed: UUID
    memory: UUID
    member: str
    # A document in the review queue (needs OCR): what resolve and reingest act on.
    review_artifact: UUID
    # A monitored integration whose target the API tests' apps may reach (sample_site).
    integration: UUID

    def params(self, route: RouteSpec, *, project: UUID | None = None) -> dict[str, object]:
        """Path values that make `route` succeed for the owner (project id overridable).

        Each value names an aggregate in the state the route needs (a draft stage to request
        sign-off, a closed item to reopen...), so a refusal can only come from the check
        under test. An unknown parameter fails: teach this method about it.
        """
        values: dict[str, object] = {"project_id": project or self.project}
        for name in route.aggregate_params:
            if name == "stage_id":
                values[name] = (
                    self.stage_draft if route.name == "request_signoff" else self.stage_review
                )
            elif name == "item_id":
                values[name] = (
                    self.raid_closed if route.name == "reopen_raid_item" else self.raid_open
                )
            elif name == "artifact_id":
                values[name] = (
                    self.review_artifact
                    if route.name in ("resolve_review_item", "reingest_artifact")
                    else self.artifact
                )
            elif name == "memory_id":
                values[name] = self.memory
            elif name == "request_id":
                values[name] = self.external_request
            elif name == "user_id":
                values[name] = self.member
            elif name == "integration_id":
                values[name] = self.integration
            elif name == "token":
                # An unsubscribe link's token: a forged one (genuine ones are tested in
                # tests/api/test_digest_subscriptions.py); a sweep varies it from here.
                values[name] = "Zm9yZ2Vk.bm90LWEtdGFn"
            elif name == "notification_id":
                # Inbox routes check ownership themselves: any id exercises the guard.
                values[name] = uuid4()
            else:
                raise AssertionError(f"{route}: unknown path parameter {name!r}")
        # Aggregates a body names (`FromScene` in tests/api/routes.py SAMPLE_BODIES): extra
        # keys, which `RouteSpec.url` ignores and `RouteSpec.body_kwargs` fills in.
        values.update(
            stage_review=self.stage_review, artifact=self.artifact, raid_open=self.raid_open
        )
        return values

    def prepare(self, api: Api, route: RouteSpec) -> None:
        """Put the project in the state `route` needs beyond what the scene already holds."""
        if route.name in ("publish_artifact", "unpublish_artifact"):
            stamp = Stamp(self.org, self.owner, "scene-content", api.clock.now(), self.project)
            give_content(api.runtime.app, stamp=stamp, artifact_id=self.artifact)
        if route.name == "unarchive_project":
            response = api.client.post(
                f"/api/projects/{self.project}/archive", headers=dev(self.owner, self.org)
            )
            assert response.status_code == 200, response.text


def build_scene(api: Api, org: UUID, owner: str, *, code: str | None = None) -> Scene:
    """Populate a new project owned by `owner` through the API."""
    c = api.client
    h = dev(owner, org)
    project = api.create_project(owner, org, code)
    member = f"member-of-{project.hex[:8]}"
    api.add_member(project, by=owner, org=org, user=member, role=Role.MEMBER)
    stage_draft = api.create_stage(project, by=owner, org=org, title="Discovery")
    stage_review = api.create_stage(project, by=owner, org=org, title="Design")
    # The round names its owner: a round with an external link belongs to its named signers,
    # and the owner's sign and reject routes must succeed in the scene (issue 7).
    signoff = api.request_signoff(project, stage_review, by=owner, org=org, signers=[owner])
    link = api.invite(project, stage_review, by=owner, org=org, email="client@example.com")

    def created(path: str, body: dict[str, object]) -> UUID:
        response = c.post(f"/api/projects/{project}{path}", json=body, headers=h)
        assert response.status_code == 201, response.text
        return UUID(response.json()["id"])

    uploaded = upload(c, project, h, filename="a.pdf")
    assert uploaded.status_code == 201, uploaded.text
    artifact = UUID(uploaded.json()["id"])
    raid_open = created("/raid", {"kind": "risk", "title": "Open risk"})
    raid_closed = created("/raid", {"kind": "action", "title": "Closed action"})
    response = c.post(
        f"/api/projects/{project}/raid/{raid_closed}/close", json={"resolution": "x"}, headers=h
    )
    assert response.status_code == 200, response.text
    memory = created("/memories", {"title": "A memory"})
    integration = created(
        "/integrations", {"name": "CRM", "kind": "http", "target": sample_url("/health")}
    )
    return Scene(
        org=org,
        owner=owner,
        project=project,
        stage_draft=stage_draft,
        stage_review=stage_review,
        signoff=signoff,
        external_request=UUID(link["request_id"]),
        token=link["token"],
        artifact=artifact,
        raid_open=raid_open,
        raid_closed=raid_closed,
        memory=memory,
        member=member,
        review_artifact=needs_ocr_artifact(api.runtime.app, org, project, actor=owner),
        integration=integration,
    )
