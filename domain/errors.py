"""Domain errors: they carry ids and a reason, never HTTP codes (interfaces map them)."""

from __future__ import annotations


class DomainError(Exception):
    """A rule of the domain refused a command."""

    def __init__(self, message: str, **ids: object) -> None:
        super().__init__(message)
        self.message = message
        self.ids = ids


class NotFoundError(DomainError):
    """The thing does not exist, or the caller may not know that it does."""


class PermissionDeniedError(DomainError):
    """The caller is known to the project but its role does not allow this."""


class RuleViolationError(DomainError):
    """The command conflicts with the current state (archived, already signed...)."""


class InvalidValueError(DomainError):
    """A value is well-formed for the transport but meaningless for the domain."""


class TokenGoneError(DomainError):
    """A one-time signing token was used, revoked, cancelled or has expired."""


class ConflictError(RuleViolationError):
    """Another command changed the aggregate first (optimistic concurrency)."""
