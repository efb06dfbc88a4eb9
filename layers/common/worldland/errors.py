"""Typed domain errors. The API layer maps each to one HTTP answer in one place (worldland.api.app)."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass
class FieldIssue:
    field: str
    issue: str


@dataclass
class DomainError(Exception):
    code: str
    message: str
    details: list[FieldIssue] = field(default_factory=list)
    status = 400

    def __str__(self) -> str:
        return f"{self.code}: {self.message}"


class InvalidInput(DomainError):
    status = 422

    @classmethod
    def on(cls, field_name: str, issue: str, code: str = "validation_error") -> InvalidInput:
        return cls(code, f"{field_name} {issue}", [FieldIssue(field_name, issue)])


class Unauthorized(DomainError):
    status = 401


class Forbidden(DomainError):
    status = 403


class NotFound(DomainError):
    status = 404


class Conflict(DomainError):
    status = 409
