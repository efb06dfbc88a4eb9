"""Sign-in requests and answers."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field, model_validator

from worldland.models.common import UtcTime, WalletAddress

SIGNATURE_PATTERN = r"^(0x)?[0-9a-fA-F]{130}$"


class NonceRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    address: WalletAddress


class NonceResponse(BaseModel):
    nonce: str
    message: str = Field(description="EIP-4361 (SIWE) text to sign with personal_sign.")
    expires_at: UtcTime
    typed_data: dict[str, Any] = Field(description="The same sign-in as EIP-712 typed data (eth_signTypedData_v4).")


class LoginRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    message: str | None = Field(default=None, max_length=4096, description="A signed SIWE message.")
    typed_data: dict[str, Any] | None = Field(default=None, description="Signed EIP-712 typed data.")
    signature: str = Field(pattern=SIGNATURE_PATTERN, description="65-byte signature, hex.")

    @model_validator(mode="after")
    def _one_payload(self) -> LoginRequest:
        if (self.message is None) == (self.typed_data is None):
            raise ValueError("give exactly one of message (SIWE) or typed_data (EIP-712)")
        return self


class LoginResponse(BaseModel):
    token: str
    token_type: str = "Bearer"  # noqa: S105 - the scheme name, not a secret
    expires_at: UtcTime
    address: str


class Principal(BaseModel):
    """Who a verified token speaks for; the authorizer hands it to the routes."""

    address: str
    expires_at: UtcTime
