"""The facades' errors (spec.py names them too): here, importing nothing, so the core's lowest modules (the clock)
can raise them."""

from __future__ import annotations


class ScenarioError(ValueError):
    """A scenario file cannot be used; the message is one line naming the file and the step."""


class DomainError(Exception):
    """An operation a facade refuses, in words for people; each wire layer renders it in its own format."""

    status = 400

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class Invalid(DomainError):
    status = 422


class NotFound(DomainError):
    status = 404


class Conflict(DomainError):
    status = 409


class Unauthorized(DomainError):
    status = 401
