"""Every projection handler names real domain event classes and reads only fields they declare.

A renamed event class fails at import (handlers name the class itself); a renamed or removed
field fails here (and in mypy), instead of turning a handler into a silent no-op.
"""

from __future__ import annotations

import ast
import importlib
import inspect
import pkgutil
import sys
import textwrap
import types
from collections.abc import Callable, Iterator
from typing import Any, Union, get_args, get_origin, get_type_hints

import pytest

import projections
from domain.base import TeaimAggregate
from domain.project import Project
from domain.stage import Stage
from projections.dispatch import EventHandlers, Registration
from projections.events import action_of, payload_fields
from projections.notification_rules import (
    EVENT_RULES,
    PLANNED_RULES,
    Audience,
    LinkKind,
    Rule,
    payload_reads,
)
from projections.registry import all_projections
from projections.telemetry import KINDS
from tests.unit.projections.support import domain_event_classes

PROJECTIONS = all_projections()
EVENT_CLASSES = domain_event_classes()
# Modules whose payload reads are named by the rule table, and checked through it below.
RULE_DRIVEN = {"projections.notification_rules"}


def projection_modules() -> list[types.ModuleType]:
    """Every module of the projections package."""
    return [
        importlib.import_module(info.name)
        for info in pkgutil.iter_modules(projections.__path__, "projections.")
    ]


def functions_of(module: types.ModuleType) -> Iterator[Callable[..., Any]]:
    """The module's own functions and the methods of the classes it defines (not generated)."""
    for value in vars(module).values():
        if inspect.isfunction(value) and value.__module__ == module.__name__:
            yield value
        elif inspect.isclass(value) and value.__module__ == module.__name__:
            for member in vars(value).values():
                if inspect.isfunction(member) and member.__code__.co_filename == module.__file__:
                    yield member


def _event_classes(hint: Any) -> tuple[type[TeaimAggregate.Event], ...]:
    options = get_args(hint) if get_origin(hint) in (Union, types.UnionType) else (hint,)
    return tuple(
        option
        for option in options
        if isinstance(option, type) and issubclass(option, TeaimAggregate.Event)
    )


def _tree(function: Callable[..., Any]) -> ast.AST:
    return ast.parse(textwrap.dedent(inspect.getsource(function)))


def field_reads(function: Callable[..., Any]) -> list[tuple[type[TeaimAggregate.Event], str]]:
    """(event class, field) for every `param.field` read of a parameter typed as a domain event."""
    hints = get_type_hints(function)
    typed = {
        name: classes
        for name, hint in hints.items()
        if name != "return" and (classes := _event_classes(hint))
    }
    return [
        (cls, node.attr)
        for node in ast.walk(_tree(function))
        if isinstance(node, ast.Attribute)
        and isinstance(node.value, ast.Name)
        and node.value.id in typed
        for cls in typed[node.value.id]
    ]


def undeclared_reads(function: Callable[..., Any]) -> list[str]:
    """The event fields a function reads that their class does not declare as payload."""
    return [
        f"{function.__qualname__} reads {cls.__qualname__}.{name}"
        for cls, name in field_reads(function)
        if name not in payload_fields(cls)
    ]


def raw_payload_reads(function: Callable[..., Any]) -> list[str]:
    """Reads of a named key straight from a raw payload, which no class check can see."""
    found = []
    for node in ast.walk(_tree(function)):
        target: ast.expr | None = None
        if isinstance(node, ast.Subscript) and isinstance(node.slice, ast.Constant):
            target = node.value
        elif (
            isinstance(node, ast.Call)
            and isinstance(node.func, ast.Attribute)
            and node.func.attr == "get"
            and node.args
            and isinstance(node.args[0], ast.Constant)
        ):
            target = node.func.value
        if target is not None and _is_payload(target):
            found.append(f"{function.__qualname__} reads payload[{ast.unparse(node)}]")
    return found


def _is_payload(node: ast.expr) -> bool:
    return (isinstance(node, ast.Attribute) and node.attr == "payload") or (
        isinstance(node, ast.Name) and node.id == "payload"
    )


def _handlers(projection: object) -> type[EventHandlers]:
    cls = type(projection)
    assert issubclass(cls, EventHandlers), cls
    return cls


def _registrations() -> list[Registration]:
    return [r for projection in PROJECTIONS for r in _handlers(projection).registrations()]


def _is_domain_event_class(cls: type) -> bool:
    if cls is TeaimAggregate.Event:
        return True
    # The class its module exposes under its name (the library leaves superseded copies).
    obj: Any = sys.modules[cls.__module__]
    for part in cls.__qualname__.split("."):
        obj = getattr(obj, part, None)
    return obj is cls and cls.__module__.startswith("domain.")


# The walk ----------------------------------------------------------------------------------


def test_every_projection_dispatches_on_event_classes() -> None:
    for projection in PROJECTIONS:
        assert _handlers(projection).registrations(), f"{projection.name} handles nothing"
    assert len(_registrations()) >= 40


@pytest.mark.parametrize("registration", _registrations(), ids=lambda r: r.function.__qualname__)
def test_each_handler_names_domain_event_classes_it_accepts(registration: Registration) -> None:
    for cls in registration.classes:
        assert _is_domain_event_class(cls), cls
    # The parameter after self is the event, annotated with a class (or a union of classes)
    # that every registered class is.
    name = list(inspect.signature(registration.function).parameters)[1]
    accepted = _event_classes(get_type_hints(registration.function)[name])
    assert accepted
    assert all(issubclass(cls, accepted) for cls in registration.classes)


def test_every_field_a_projection_reads_is_declared_by_its_event_class() -> None:
    functions = [f for module in projection_modules() for f in functions_of(module)]
    reads = [read for f in functions for read in field_reads(f)]
    assert [problem for f in functions for problem in undeclared_reads(f)] == []
    # The scan did look: handlers read dozens of typed fields.
    assert len(reads) >= 40
    assert (Stage.SignOffRequested, "round") in reads


def test_no_projection_reads_a_named_key_from_a_raw_payload() -> None:
    problems = [
        problem
        for module in projection_modules()
        if module.__name__ not in RULE_DRIVEN
        for f in functions_of(module)
        for problem in raw_payload_reads(f)
    ]
    assert problems == []


def test_the_bell_rules_read_only_fields_their_event_classes_declare() -> None:
    for cls, rule in EVENT_RULES.items():
        assert _is_domain_event_class(cls), cls
        assert payload_reads(rule) <= set(payload_fields(cls)), cls.__qualname__
    assert payload_reads(EVENT_RULES[Stage.Rejected]) == {"reason"}


def test_rules_written_ahead_of_their_event_have_no_event_class_yet() -> None:
    # When the class lands, key its rule by the class in EVENT_RULES instead.
    actions = {action_of(cls) for cls in EVENT_CLASSES}
    assert not set(PLANNED_RULES) & actions


def test_telemetry_counts_actions_of_domain_event_classes() -> None:
    assert set(KINDS) <= {action_of(cls) for cls in EVENT_CLASSES}


# The checks can fail -----------------------------------------------------------------------


def _reads_a_field_the_event_lacks(event: Stage.Renamed) -> str:
    return str(event.name)  # type: ignore[attr-defined]  # Stage.Renamed has `title`


def _reads_the_raw_payload(record: Any) -> str:
    return str(record.payload["title"]) + str(record.payload.get("name"))


def test_the_check_catches_a_field_the_event_class_does_not_declare() -> None:
    assert undeclared_reads(_reads_a_field_the_event_lacks) == [
        "_reads_a_field_the_event_lacks reads Stage.Renamed.name"
    ]


def test_the_check_catches_raw_payload_reads() -> None:
    assert len(raw_payload_reads(_reads_the_raw_payload)) == 2


def test_the_rule_check_catches_a_template_value_the_event_lacks() -> None:
    rule = Rule(Audience.ALL_MEMBERS, "{project}", "archived: {reason}", LinkKind.PROJECT)
    assert payload_reads(rule) - set(payload_fields(Project.Archived)) == {"reason"}
