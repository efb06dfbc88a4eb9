"""EIP-4361 (Sign-In with Ethereum) messages, built and parsed by the spec's ABNF.

The PyPI `siwe` package pins web3 < 8 and fails to import with current `abnf`, so the message is
handled here; signature recovery stays with eth-account.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import datetime

from worldland.models.common import format_time

STATEMENT = "Sign in to WorldLand Cloud."

_MESSAGE = re.compile(
    r"^(?:(?P<scheme>[a-zA-Z][a-zA-Z0-9+.-]*)://)?(?P<domain>[^\s/]+)"
    r" wants you to sign in with your Ethereum account:\n"
    r"(?P<address>0x[0-9a-fA-F]{40})\n\n"
    r"(?:(?P<statement>[^\n]+)\n)?\n"
    r"URI: (?P<uri>[^\s]+)\n"
    r"Version: (?P<version>1)\n"
    r"Chain ID: (?P<chain_id>[0-9]+)\n"
    r"Nonce: (?P<nonce>[A-Za-z0-9]{8,})\n"
    r"Issued At: (?P<issued_at>[^\n]+)"
    r"(?:\nExpiration Time: (?P<expiration_time>[^\n]+))?"
    r"(?:\nNot Before: (?P<not_before>[^\n]+))?"
    r"(?:\nRequest ID: (?P<request_id>[^\n]*))?"
    r"(?:\nResources:(?P<resources>(?:\n- [^\n]+)+))?\n?$"
)


class MalformedMessage(ValueError):
    """Not an EIP-4361 message."""


@dataclass
class SiweMessage:
    domain: str
    address: str
    uri: str
    chain_id: int
    nonce: str
    issued_at: datetime
    statement: str | None = STATEMENT
    version: str = "1"
    expiration_time: datetime | None = None
    not_before: datetime | None = None
    request_id: str | None = None
    resources: list[str] = field(default_factory=list)
    scheme: str | None = None

    def text(self) -> str:
        prefix = f"{self.scheme}://" if self.scheme else ""
        lines = [f"{prefix}{self.domain} wants you to sign in with your Ethereum account:", self.address, ""]
        if self.statement:
            lines.append(self.statement)
        lines += [
            "",
            f"URI: {self.uri}",
            f"Version: {self.version}",
            f"Chain ID: {self.chain_id}",
            f"Nonce: {self.nonce}",
            f"Issued At: {format_time(self.issued_at)}",
        ]
        if self.expiration_time:
            lines.append(f"Expiration Time: {format_time(self.expiration_time)}")
        if self.not_before:
            lines.append(f"Not Before: {format_time(self.not_before)}")
        if self.request_id is not None:
            lines.append(f"Request ID: {self.request_id}")
        if self.resources:
            lines.append("Resources:")
            lines += [f"- {r}" for r in self.resources]
        return "\n".join(lines)

    @classmethod
    def parse(cls, text: str) -> SiweMessage:
        match = _MESSAGE.match(text.replace("\r\n", "\n"))
        if not match:
            raise MalformedMessage("not an EIP-4361 sign-in message")
        g = match.groupdict()
        return cls(
            scheme=g["scheme"],
            domain=g["domain"],
            address=g["address"],
            statement=g["statement"],
            uri=g["uri"],
            version=g["version"],
            chain_id=int(g["chain_id"]),
            nonce=g["nonce"],
            issued_at=_time(g["issued_at"]),
            expiration_time=_time(g["expiration_time"]) if g["expiration_time"] else None,
            not_before=_time(g["not_before"]) if g["not_before"] else None,
            request_id=g["request_id"],
            resources=[r[2:] for r in (g["resources"] or "").split("\n") if r],
        )


def _time(value: str) -> datetime:
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError as exc:
        raise MalformedMessage(f"not an RFC 3339 time: {value!r}") from exc
    if parsed.tzinfo is None:
        raise MalformedMessage(f"time without a zone: {value!r}")
    return parsed
