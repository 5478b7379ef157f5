"""Database settings, read once from the environment into a typed, validated model."""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Literal, Self

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

ENV_PREFIX = "RAMPART_DB_"


class SettingsError(ValueError):
    """The environment does not describe a usable database connection."""


class DatabaseSettings(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    host: str = Field(min_length=1)
    port: int = Field(default=5432, ge=1, le=65535)
    name: str = Field(default="rampart", min_length=1)
    user: str = Field(min_length=1)
    auth: Literal["iam", "password"] = "iam"
    password: str | None = Field(default=None, repr=False)
    password_secret_arn: str | None = None
    sslmode: Literal["verify-full", "verify-ca", "require"] = "verify-full"
    sslrootcert: str | None = None
    statement_timeout_ms: int = Field(default=5000, ge=100, le=600_000)
    connect_timeout_s: int = Field(default=5, ge=1, le=60)
    application_name: str = "rampart"
    region: str | None = None

    @model_validator(mode="after")
    def _check(self) -> Self:
        if self.auth == "iam":
            if self.sslmode != "verify-full":
                raise ValueError("IAM authentication always uses sslmode=verify-full")
            if self.password or self.password_secret_arn:
                raise ValueError("IAM authentication takes no password")
            if not self.region:
                raise ValueError("IAM authentication needs AWS_REGION")
        elif bool(self.password) == bool(self.password_secret_arn):
            raise ValueError(
                "password authentication needs exactly one of RAMPART_DB_PASSWORD or RAMPART_DB_PASSWORD_SECRET_ARN"
            )
        return self

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None, application_name: str = "rampart") -> Self:
        env = os.environ if environ is None else environ
        raw: dict[str, object] = {
            key[len(ENV_PREFIX) :].lower(): value
            for key, value in env.items()
            if key.startswith(ENV_PREFIX) and value != ""
        }
        raw.setdefault("application_name", application_name)
        region = env.get("AWS_REGION") or env.get("AWS_DEFAULT_REGION")
        if region:
            raw.setdefault("region", region)
        try:
            return cls.model_validate(raw)
        except ValidationError as exc:
            # Name the variables, never echo their values (one of them may be a password).
            problems = "; ".join(
                f"{ENV_PREFIX}{'_'.join(str(p) for p in err['loc']).upper() or '*'}: {err['msg']}"
                for err in exc.errors(include_input=False)
            )
            raise SettingsError(f"invalid database settings: {problems}") from None
