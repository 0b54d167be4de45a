"""The reactor seam on the real store: effects once per event through crashes and replays."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from uuid import UUID

import psycopg
import pytest

from adapters.postgres.database import DatabaseUrl
from adapters.postgres.projection_runner import resume, statuses
from adapters.postgres.reactor_runner import ReactionFailedError, ReactorRunner
from application.app import Teaim
from application.reactors import effect_id_for
from domain.stamps import Stamp
from tests.support.apps import fill, open_app, seed_org
from tests.support.catch_up import run_to_head
from tests.support.poison import PickyRelay
from tests.support.reactors import (
    Crash,
    Mailing,
    MailReactor,
    MailRelay,
    request_mailings,
)
from tests.support.tables import head


@dataclass
class Scene:
    app: Teaim
    relay: MailRelay
    reactor: MailReactor
    url: str
    org: UUID

    def runner(self, **options: int) -> ReactorRunner:
        """A fresh runner, as a restarted process would build it."""
        return ReactorRunner(
            self.reactor, DatabaseUrl.parse(self.url), self.app.mapper.to_domain_event, **options
        )

    def catch_up(self, runner: ReactorRunner | None = None) -> int:
        return run_to_head(self.url, runner or self.runner())

    def position(self) -> int:
        with psycopg.connect(self.url) as conn:
            return self.runner().position(conn)

    def deliveries(self, mailing: UUID) -> dict[str, str]:
        found: object = self.app.repository.get(mailing)
        assert isinstance(found, Mailing)
        return found.deliveries

    def delivered_events(self) -> int:
        with psycopg.connect(self.url) as conn:
            row = conn.execute(
                "SELECT count(*) FROM teaim_events WHERE topic LIKE %s", ("%Mailing.Delivered",)
            ).fetchone()
        assert row is not None
        return int(row[0])


@pytest.fixture
def scene(database_url: str) -> Iterator[Scene]:
    app = open_app(database_url)
    try:
        org, _project, _owner = seed_org(app)
        relay = MailRelay()
        yield Scene(app, relay, MailReactor(app, relay), database_url, org)
    finally:
        app.close()


def key_of(scene: Scene, mailing: UUID) -> str:
    (key,) = scene.deliveries(mailing)
    return key


def test_each_requested_mailing_is_sent_once_and_its_delivery_recorded(scene: Scene) -> None:
    mailings = request_mailings(scene.app, scene.org, 3)
    fill(scene.app, scene.org, seed_org(scene.app)[1], 30)  # events the reactor passes over

    scene.catch_up()

    assert scene.position() == head(scene.url)
    for mailing in mailings:
        key = key_of(scene, mailing)
        assert scene.relay.attempts[key] == 1
        assert scene.deliveries(mailing)[key] == scene.relay.delivered[key]
    assert scene.delivered_events() == 3


def test_the_effect_id_is_the_same_for_the_same_event_and_differs_between_events(
    scene: Scene,
) -> None:
    first, second = request_mailings(scene.app, scene.org, 2)
    scene.catch_up()

    keys = {key_of(scene, first), key_of(scene, second)}
    assert len(keys) == 2
    events = [
        scene.app.mapper.to_domain_event(stored)
        for stored in scene.app.recorder.select_events(first, lte=1)
    ]
    assert isinstance(events[0], Mailing.Requested)
    assert str(effect_id_for(MailReactor.name, events[0])) == key_of(scene, first)


def test_a_crash_between_effect_and_outcome_repeats_the_effect_under_the_same_key(
    scene: Scene,
) -> None:
    first, second = request_mailings(scene.app, scene.org, 2)
    scene.reactor.crash_before_record = True
    with pytest.raises(Crash):
        scene.catch_up()
    assert scene.delivered_events() == 0  # the effect happened, its outcome did not
    assert sum(scene.relay.attempts.values()) == 1

    scene.catch_up()  # the restarted process

    key = key_of(scene, first)
    # At least once: the effect ran again, with the same idempotency key, so the target
    # delivered once and handed back the same receipt.
    assert scene.relay.attempts[key] == 2
    assert list(scene.relay.delivered) == [key, key_of(scene, second)]
    assert scene.deliveries(first)[key] == scene.relay.delivered[key]
    assert scene.delivered_events() == 2
    assert scene.position() == head(scene.url)


def test_a_crash_after_the_outcome_does_not_repeat_the_effect(scene: Scene) -> None:
    first, second = request_mailings(scene.app, scene.org, 2)
    scene.reactor.crash_after_record = True
    with pytest.raises(Crash):
        scene.catch_up()
    position_at_crash = scene.position()
    assert scene.delivered_events() == 1
    assert position_at_crash < head(scene.url)  # the outcome is recorded, the position is not

    scene.catch_up()

    assert scene.relay.attempts[key_of(scene, first)] == 1
    assert scene.relay.attempts[key_of(scene, second)] == 1
    assert scene.delivered_events() == 2
    assert scene.position() == head(scene.url)


def test_a_replay_from_zero_repeats_no_effect(scene: Scene) -> None:
    mailings = request_mailings(scene.app, scene.org, 4)
    scene.catch_up()
    attempts = dict(scene.relay.attempts)
    runner = scene.runner()
    with psycopg.connect(scene.url) as conn:
        conn.execute("UPDATE projection_tracking SET position = 0 WHERE name = %s", (runner.name,))

    passed = scene.catch_up(runner)

    assert passed == head(scene.url)
    assert dict(scene.relay.attempts) == attempts
    assert scene.delivered_events() == len(mailings)
    assert all(len(scene.deliveries(m)) == 1 for m in mailings)


def test_a_failing_effect_is_retried_then_halts_its_org_until_resumed(
    scene: Scene,
) -> None:
    # Was: the reactor stopped for every org. Now (issue 7) the event's org halts; with one
    # org in the log, nothing else is delivered meanwhile.
    (mailing,) = request_mailings(scene.app, scene.org, 1)
    runner = scene.runner(max_attempts=3)
    scene.relay.failures_left = 3

    for _ in range(2):
        with pytest.raises(ReactionFailedError, match="relay unavailable"):
            scene.catch_up(runner)
    scene.catch_up(runner)  # the third failure halts the org: no error for the others
    with psycopg.connect(scene.url) as conn:
        (status,) = statuses(conn, [runner.name])
    assert status.status == "halted"
    (halt,) = status.halts
    assert (halt.org_id, halt.failed_position) == (scene.org, head(scene.url))
    assert "relay unavailable" in halt.error
    assert scene.catch_up(runner) == 0  # held, not retried
    assert scene.delivered_events() == 0

    with psycopg.connect(scene.url) as conn:
        assert resume(conn, runner.name)
    scene.catch_up(runner)

    key = key_of(scene, mailing)
    assert scene.relay.attempts[key] == 4
    assert scene.delivered_events() == 1
    with psycopg.connect(scene.url) as conn:
        assert statuses(conn, [runner.name])[0].halts == ()


def test_an_effect_failing_for_one_org_does_not_hold_back_another(database_url: str) -> None:
    app = open_app(database_url)
    try:
        sick, _, _ = seed_org(app)
        well, _, _ = seed_org(app)
        relay = PickyRelay(refused="stuck@example.com")
        scene = Scene(app, relay, MailReactor(app, relay), database_url, sick)
        runner = scene.runner(max_attempts=2)
        stamp = Stamp(sick, "owner", "test", datetime.now(UTC))
        first = Mailing.request(to="stuck@example.com", body="hi", stamp=stamp)
        second = Mailing.request(to="next@example.com", body="hi", stamp=stamp)
        app.save(first)
        app.save(second)  # held behind the first: mail of one org goes out in order
        (well_mailing,) = request_mailings(app, well, 1)

        with pytest.raises(ReactionFailedError):
            scene.catch_up(runner)
        scene.catch_up(runner)

        assert scene.deliveries(well_mailing)  # the other org's mail went out
        assert scene.deliveries(first.id) == {}
        assert scene.deliveries(second.id) == {}
        (well_late,) = request_mailings(app, well, 1)
        scene.catch_up(runner)
        assert scene.deliveries(well_late)
        assert scene.deliveries(second.id) == {}

        relay.refusing = False
        with psycopg.connect(database_url) as conn:
            assert resume(conn, runner.name, sick)
        scene.catch_up(runner)
        assert len(scene.deliveries(first.id)) == 1
        assert len(scene.deliveries(second.id)) == 1
        assert sorted(relay.delivered) == sorted(
            [key_of(scene, m) for m in (first.id, second.id, well_mailing, well_late)]
        )
        with psycopg.connect(database_url) as conn:
            assert statuses(conn, [runner.name])[0].halts == ()
    finally:
        app.close()


def test_a_resume_that_fails_again_keeps_the_org_held(database_url: str) -> None:
    # The org's events written after the halt stay held behind the one that failed again:
    # never performed before the events held ahead of them.
    app = open_app(database_url)
    try:
        sick, _, _ = seed_org(app)
        relay = PickyRelay(refused="stuck@example.com")
        scene = Scene(app, relay, MailReactor(app, relay), database_url, sick)
        runner = scene.runner(max_attempts=2)
        stamp = Stamp(sick, "owner", "test", datetime.now(UTC))
        first = Mailing.request(to="stuck@example.com", body="hi", stamp=stamp)
        app.save(first)
        with pytest.raises(ReactionFailedError):
            scene.catch_up(runner)
        scene.catch_up(runner)  # the second failure halts the org
        later = Mailing.request(to="later@example.com", body="hi", stamp=stamp)
        app.save(later)
        scene.catch_up(runner)
        assert scene.deliveries(later.id) == {}  # held behind the first

        with psycopg.connect(database_url) as conn:
            assert resume(conn, runner.name, sick)
        with pytest.raises(ReactionFailedError):
            scene.catch_up(runner)
        newest = Mailing.request(to="newest@example.com", body="hi", stamp=stamp)
        app.save(newest)  # after the tracked position: the step's batch reads it
        scene.catch_up(runner)  # the resume fails again: the org is halted anew
        with psycopg.connect(database_url) as conn:
            (halt,) = statuses(conn, [runner.name])[0].halts
        assert halt.org_id == sick
        assert not halt.resume_requested
        assert scene.deliveries(later.id) == {}, "a held event went out before its elders"
        assert scene.deliveries(newest.id) == {}, "a held event went out before its elders"

        relay.refusing = False
        with psycopg.connect(database_url) as conn:
            assert resume(conn, runner.name, sick)
        scene.catch_up(runner)
        assert len(scene.deliveries(first.id)) == 1
        assert len(scene.deliveries(later.id)) == 1
        assert len(scene.deliveries(newest.id)) == 1
        assert list(relay.delivered) == [key_of(scene, m.id) for m in (first, later, newest)]
    finally:
        app.close()


def test_only_one_runner_leads_a_reactor_at_a_time(scene: Scene) -> None:
    (mailing,) = request_mailings(scene.app, scene.org, 1)
    scene.reactor.release = threading.Event()
    leader = threading.Thread(target=scene.catch_up)
    leader.start()
    try:
        assert scene.reactor.performing.wait(30)
        # Another process's runner finds the reactor led, and does nothing.
        assert scene.catch_up() == 0
    finally:
        scene.reactor.release.set()
        leader.join(30)
    scene.reactor.release = None
    scene.catch_up()

    assert scene.relay.attempts[key_of(scene, mailing)] == 1
    assert scene.position() == head(scene.url)


def test_a_tailing_runner_reacts_to_new_events_until_stopped(scene: Scene) -> None:
    runner = scene.runner()
    stop = threading.Event()
    thread = threading.Thread(target=runner.run, args=(stop,), kwargs={"idle_timeout": 0.2})
    thread.start()
    try:
        (mailing,) = request_mailings(scene.app, scene.org, 1)
        delivered = threading.Event()
        for _ in range(600):
            if scene.delivered_events() == 1:
                delivered.set()
                break
            stop.wait(0.05)
        assert delivered.is_set(), "the tailing runner never delivered"
    finally:
        stop.set()
        thread.join(30)
    assert not thread.is_alive()
    assert scene.relay.attempts[key_of(scene, mailing)] == 1
