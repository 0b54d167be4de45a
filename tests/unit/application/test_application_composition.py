"""The application is flat: sibling command modules over one base, every port in the constructor.

See docs/decisions/0002-application-composition.md.
"""

from __future__ import annotations

import importlib
import inspect
import pkgutil
from uuid import uuid4

import pytest

import application
from application.app import Teaim
from application.base import TeaimBase
from application.config import AppConfig
from tests.support.apps import IN_MEMORY
from tests.support.clocks import SettableClock
from tests.support.contexts import service
from tests.support.secrets import TokenSecrets

# What every class carries without declaring it (the library names each Application subclass).
_IMPLICIT = {
    "__module__",
    "__qualname__",
    "__doc__",
    "__firstlineno__",
    "__static_attributes__",
    "name",
}


def command_classes() -> set[type[TeaimBase]]:
    """Every class of the `application` package that extends the base, except Teaim itself."""
    found: set[type[TeaimBase]] = set()
    for module_info in pkgutil.walk_packages(application.__path__, prefix="application."):
        module = importlib.import_module(module_info.name)
        for _, cls in inspect.getmembers(module, inspect.isclass):
            if (
                issubclass(cls, TeaimBase)
                and cls.__module__ == module.__name__
                and cls not in {TeaimBase, Teaim}
            ):
                found.add(cls)
    return found


def test_command_modules_are_siblings_over_the_one_base() -> None:
    commands = command_classes()
    assert len(commands) >= 7
    chained = {cls.__qualname__ for cls in commands if cls.__bases__ != (TeaimBase,)}
    assert chained == set(), "a command module extends another one instead of TeaimBase"
    assert set(Teaim.__bases__) == commands, "Teaim must assemble every command module"


def test_no_command_module_shadows_another() -> None:
    # With siblings, a name defined twice would silently resolve by base order.
    owners: dict[str, str] = {}
    clashes: list[str] = []
    for cls in command_classes():
        for name in set(vars(cls)) - _IMPLICIT:
            if name in owners:
                clashes.append(f"{name}: {owners[name]} and {cls.__qualname__}")
            owners[name] = cls.__qualname__
    assert clashes == []
    assert set(vars(TeaimBase)) & set(owners) == set()


def test_the_assembled_application_adds_no_behaviour_of_its_own() -> None:
    assert set(vars(Teaim)) - _IMPLICIT == set()


def test_every_port_is_a_required_constructor_argument() -> None:
    parameters = inspect.signature(TeaimBase.__init__).parameters
    for port in ("clock", "secrets", "audit_log"):
        assert parameters[port].kind is inspect.Parameter.KEYWORD_ONLY
        assert parameters[port].default is inspect.Parameter.empty, port
    with pytest.raises(TypeError, match="audit_log"):
        Teaim(IN_MEMORY, clock=SettableClock(), secrets=TokenSecrets())  # type: ignore[call-arg]


def test_the_constructor_wires_the_ports_it_is_given() -> None:
    clock, secrets, config = SettableClock(), TokenSecrets(), AppConfig(snapshot_interval=9)
    app = Teaim(IN_MEMORY, clock=clock, secrets=secrets, audit_log=None, config=config)
    assert (app.clock, app.secrets, app.audit_log, app.config) == (clock, secrets, None, config)


def test_auditing_without_an_audit_log_says_so() -> None:
    app = Teaim(IN_MEMORY, clock=SettableClock(), secrets=TokenSecrets(), audit_log=None)
    with pytest.raises(RuntimeError, match="built without an audit log"):
        app.seal_all_projects(correlation_id="cid")
    # Commands that need no audit log still work.
    org = uuid4()
    assert app.create_org(ctx=service(org), name="Acme").id == org
