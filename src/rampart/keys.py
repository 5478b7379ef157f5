"""Client API keys, issued outside Terraform (docs/local.md, "API keys"; conventions fixed for every stack).

Terraform owns the usage plans (``<name>-<tier>``) and the CMK ``alias/<name>-api-keys``; it never holds a key
value. For each client of stack ``<name>`` this module keeps, through the ordinary AWS APIs (real AWS or the
local twin's emulator alike):

- API Gateway keys named ``<name>-<client>-<n>`` (``n`` grows with each rotation), tagged ``rampart:stack`` and
  ``rampart:client``, attached to the usage plan of the client's tier;
- the Secrets Manager secret ``<name>/api-keys/<client>``, encrypted with ``alias/<name>-api-keys``, whose value
  is ``{"client", "tier", "current": {"id", "value", "created_at"}, "previous": {...} | null,
  "previous_expires_at": RFC 3339 | null}``.

``rotate`` makes a new key current and keeps the old one valid until ``previous_expires_at`` (the overlap
window); ``prune`` removes previous keys whose window has ended (run it on a schedule; ``create``, ``rotate``
and ``revoke`` prune the client they touch); ``revoke`` disables, then deletes, a client's keys at once (or only
the previous one, ending the overlap early). Key values leave this module only inside the secret and in the
objects returned to the caller; nothing here logs, and no error message carries a value.

The boto3 clients are injected: the CLI builds them for AWS (ordinary credentials) or for the twin's emulator.
"""

from __future__ import annotations

import datetime as dt
import json
import re
import secrets
import string
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

DEFAULT_TIER = "standard"
DEFAULT_OVERLAP = dt.timedelta(hours=24)
NAME_PATTERN = re.compile(r"[a-z](?:[a-z0-9-]{0,38}[a-z0-9])?")
# With no throttle on its plan, a key is limited by the account (API Gateway's default account-level limits).
ACCOUNT_RATE, ACCOUNT_BURST = 10_000.0, 5_000


class KeysError(Exception):
    """A key operation that cannot be done as asked; the message is one line and never holds a key value."""


# -- names -------------------------------------------------------------------------------------------------------------
def usage_plan_name(stack: str, tier: str) -> str:
    return f"{stack}-{tier}"


def secret_name(stack: str, client: str) -> str:
    return f"{stack}/api-keys/{client}"


def key_name(stack: str, client: str, number: int) -> str:
    return f"{stack}-{client}-{number}"


def kms_alias(stack: str) -> str:
    return f"alias/{stack}-api-keys"


def check_name(kind: str, value: str) -> str:
    if not NAME_PATTERN.fullmatch(value):
        raise KeysError(
            f"{kind} must be 1-40 lowercase letters, digits or hyphens, starting with a letter (got {value[:50]!r})"
        )
    return value


def new_key_value() -> str:
    """40 random letters and digits (~238 bits), inside API Gateway's 20-128 character rule."""
    alphabet = string.ascii_letters + string.digits
    return "".join(secrets.choice(alphabet) for _ in range(40))


def rfc3339(moment: dt.datetime) -> str:
    return moment.astimezone(dt.UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


def parse_rfc3339(text: str) -> dt.datetime:
    moment = dt.datetime.fromisoformat(text.replace("Z", "+00:00"))
    if moment.tzinfo is None:
        raise ValueError("no offset")
    return moment


# -- usage plans -------------------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class UsagePlan:
    """API Gateway usage-plan throttling (steady rate and burst) and quota (requests per UTC day)."""

    rate: float = 100.0
    burst: int = 200
    quota_per_day: int | None = None

    def __post_init__(self) -> None:
        if self.rate <= 0 or self.burst < 1:
            raise ValueError("a usage plan needs rate > 0 and burst >= 1")
        if self.quota_per_day is not None and self.quota_per_day < 1:
            raise ValueError("quota_per_day must be positive")

    def to_api(self) -> dict[str, Any]:
        """The ``throttle``/``quota`` arguments of CreateUsagePlan."""
        out: dict[str, Any] = {"throttle": {"rateLimit": self.rate, "burstLimit": self.burst}}
        if self.quota_per_day is not None:
            out["quota"] = {"limit": self.quota_per_day, "period": "DAY"}
        return out

    @staticmethod
    def from_api(plan: dict[str, Any]) -> UsagePlan:
        throttle = plan.get("throttle") or {}
        quota = plan.get("quota") or {}
        rate = float(throttle.get("rateLimit") or ACCOUNT_RATE)
        burst = int(throttle.get("burstLimit") or ACCOUNT_BURST)
        # Only daily quotas are metered by the twin; a weekly or monthly one is not enforced locally.
        per_day = int(quota["limit"]) if quota.get("period") == "DAY" and quota.get("limit") else None
        return UsagePlan(rate=max(rate, 1e-6), burst=max(burst, 1), quota_per_day=per_day)


@dataclass(frozen=True)
class StackPlan:
    tier: str
    plan_id: str
    limits: UsagePlan


@dataclass(frozen=True)
class ActiveKey:
    """One key API Gateway would accept: enabled and attached to a usage plan of this stack."""

    key_id: str
    value: str = field(repr=False)
    plan: UsagePlan
    tier: str = DEFAULT_TIER


def _pages(client: Any, operation: str, **kwargs: Any) -> Iterator[dict[str, Any]]:
    for page in client.get_paginator(operation).paginate(**kwargs):
        yield from page.get("items", [])


def stack_usage_plans(apigateway: Any, stack: str) -> dict[str, StackPlan]:
    """The usage plans of ``stack``, by tier: those named ``<stack>-<tier>``."""
    plans: dict[str, StackPlan] = {}
    prefix = f"{stack}-"
    for plan in _pages(apigateway, "get_usage_plans"):
        name = str(plan.get("name", ""))
        if not name.startswith(prefix):
            continue
        tier = name[len(prefix) :]
        tagged = (plan.get("tags") or {}).get("rampart:tier")
        if tagged not in (None, tier) or not NAME_PATTERN.fullmatch(tier):
            continue  # another stack whose name extends ours ("<stack>-x-standard")
        plans[tier] = StackPlan(tier, str(plan["id"]), UsagePlan.from_api(plan))
    return plans


def active_keys(apigateway: Any, stack: str) -> list[ActiveKey]:
    """Every key API Gateway would accept for this stack: enabled and attached to one of its usage plans."""
    members: dict[str, StackPlan] = {}
    for plan in stack_usage_plans(apigateway, stack).values():
        for item in _pages(apigateway, "get_usage_plan_keys", usagePlanId=plan.plan_id):
            members.setdefault(str(item["id"]), plan)
    out = []
    for key in _pages(apigateway, "get_api_keys", includeValues=True):
        member = members.get(str(key.get("id")))
        if member is not None and key.get("enabled") and key.get("value"):
            out.append(ActiveKey(str(key["id"]), str(key["value"]), member.limits, member.tier))
    return out


# -- the secret --------------------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class KeyVersion:
    id: str
    value: str = field(repr=False)
    created_at: str

    def to_json(self) -> dict[str, str]:
        return {"id": self.id, "value": self.value, "created_at": self.created_at}

    @staticmethod
    def from_json(raw: Any) -> KeyVersion:
        if not isinstance(raw, dict) or not all(isinstance(raw.get(k), str) for k in ("id", "value", "created_at")):
            raise ValueError("a key version needs id, value and created_at")
        return KeyVersion(raw["id"], raw["value"], raw["created_at"])


@dataclass(frozen=True)
class ClientKeys:
    """The value of ``<name>/api-keys/<client>``."""

    client: str
    tier: str
    current: KeyVersion
    previous: KeyVersion | None = None
    previous_expires_at: str | None = None

    def to_secret_string(self) -> str:
        return json.dumps(
            {
                "client": self.client,
                "tier": self.tier,
                "current": self.current.to_json(),
                "previous": self.previous.to_json() if self.previous else None,
                "previous_expires_at": self.previous_expires_at,
            }
        )

    @staticmethod
    def from_secret_string(text: str) -> ClientKeys:
        raw = json.loads(text)
        if not isinstance(raw, dict) or not isinstance(raw.get("client"), str) or not isinstance(raw.get("tier"), str):
            raise ValueError("not a client key secret")
        previous = KeyVersion.from_json(raw["previous"]) if raw.get("previous") else None
        expires = raw.get("previous_expires_at")
        if expires is not None and not isinstance(expires, str):
            raise ValueError("previous_expires_at must be a string")
        return ClientKeys(raw["client"], raw["tier"], KeyVersion.from_json(raw.get("current")), previous, expires)

    def summary(self) -> dict[str, Any]:
        """What may be printed: ids and times, never a value."""
        return {
            "client": self.client,
            "tier": self.tier,
            "key_id": self.current.id,
            "created_at": self.current.created_at,
            "previous_key_id": self.previous.id if self.previous else None,
            "previous_expires_at": self.previous_expires_at,
        }


@dataclass(frozen=True)
class KeyInfo:
    """One key of the stack as ``list`` shows it (no value)."""

    client: str
    tier: str | None
    key_id: str
    name: str
    enabled: bool
    created_at: str | None
    role: str  # "current" or "previous"
    expires_at: str | None


# -- the operations ----------------------------------------------------------------------------------------------------
def _error_code(exc: Exception) -> str:
    response = getattr(exc, "response", None)
    return str((response or {}).get("Error", {}).get("Code", "")) if isinstance(response, dict) else ""


class KeyManager:
    """``create``, ``list_keys``, ``rotate``, ``revoke`` and ``prune`` for the clients of one stack."""

    def __init__(
        self,
        apigateway: Any,
        secretsmanager: Any,
        stack: str,
        *,
        clock: Callable[[], dt.datetime] = lambda: dt.datetime.now(dt.UTC),
        new_value: Callable[[], str] = new_key_value,
    ) -> None:
        self.apigateway, self.secretsmanager = apigateway, secretsmanager
        self.stack = check_name("the stack name", stack)
        self._clock, self._new_value = clock, new_value

    # -- reading -------------------------------------------------------------------------------------------------------
    def _plan(self, tier: str) -> StackPlan:
        plans = stack_usage_plans(self.apigateway, self.stack)
        if tier not in plans:
            known = ", ".join(sorted(plans)) or "none"
            raise KeysError(
                f"no usage plan {usage_plan_name(self.stack, tier)!r} (tiers of stack {self.stack!r}: {known})"
            )
        return plans[tier]

    def _stack_keys(self, include_values: bool = False) -> list[dict[str, Any]]:
        return [
            k
            for k in _pages(self.apigateway, "get_api_keys", includeValues=include_values)
            if (k.get("tags") or {}).get("rampart:stack") == self.stack
        ]

    def _client_keys(self, client: str) -> list[dict[str, Any]]:
        return [k for k in self._stack_keys() if (k.get("tags") or {}).get("rampart:client") == client]

    def read(self, client: str) -> ClientKeys | None:
        """The client's secret, or None when there is none."""
        try:
            raw = self.secretsmanager.get_secret_value(SecretId=secret_name(self.stack, client))
        except Exception as exc:
            if _error_code(exc) == "ResourceNotFoundException":
                return None
            raise
        try:
            return ClientKeys.from_secret_string(str(raw["SecretString"]))
        except (ValueError, KeyError, TypeError):
            raise KeysError(f"the secret {secret_name(self.stack, client)!r} is not a client key secret") from None

    def list_keys(self) -> list[KeyInfo]:
        tiers: dict[str, str] = {}
        for plan in stack_usage_plans(self.apigateway, self.stack).values():
            for item in _pages(self.apigateway, "get_usage_plan_keys", usagePlanId=plan.plan_id):
                tiers.setdefault(str(item["id"]), plan.tier)
        by_client: dict[str, list[dict[str, Any]]] = {}
        for key in self._stack_keys():
            by_client.setdefault(str(key["tags"].get("rampart:client", "?")), []).append(key)
        rows = []
        for client, keys in sorted(by_client.items()):
            keys.sort(key=_key_number)
            for key in keys:
                expires = re.search(r"expires_at=(\S+)", str(key.get("description") or ""))
                created = key.get("createdDate")
                rows.append(
                    KeyInfo(
                        client=client,
                        tier=tiers.get(str(key["id"])),
                        key_id=str(key["id"]),
                        name=str(key.get("name", "")),
                        enabled=bool(key.get("enabled")),
                        created_at=rfc3339(created) if isinstance(created, dt.datetime) else None,
                        role="current" if key is keys[-1] else "previous",
                        expires_at=expires.group(1) if expires else None,
                    )
                )
        return rows

    # -- writing -------------------------------------------------------------------------------------------------------
    def _new_key(self, client: str, number: int, plan: StackPlan, value: str | None) -> KeyVersion:
        value = value or self._new_value()
        if not 20 <= len(value) <= 128 or not value.isascii() or not value.isprintable():
            raise KeysError("an API key value must be 20-128 printable ASCII characters")
        created = self.apigateway.create_api_key(
            name=key_name(self.stack, client, number),
            description=f"rampart client {client} ({plan.tier})",
            enabled=True,
            value=value,
            tags={"rampart:stack": self.stack, "rampart:client": client},
        )
        key_id = str(created["id"])
        try:
            self.apigateway.create_usage_plan_key(usagePlanId=plan.plan_id, keyId=key_id, keyType="API_KEY")
        except Exception:
            self._delete_keys([key_id])
            raise
        return KeyVersion(key_id, value, rfc3339(self._clock()))

    def _delete_keys(self, key_ids: list[str]) -> None:
        """Disable every key first (they stop working at once), then delete them."""
        for key_id in key_ids:
            try:
                self.apigateway.update_api_key(
                    apiKey=key_id, patchOperations=[{"op": "replace", "path": "/enabled", "value": "false"}]
                )
            except Exception as exc:
                if _error_code(exc) != "NotFoundException":
                    raise
        for key_id in key_ids:
            try:
                self.apigateway.delete_api_key(apiKey=key_id)
            except Exception as exc:
                if _error_code(exc) != "NotFoundException":
                    raise

    def _write(self, keys: ClientKeys) -> None:
        self.secretsmanager.put_secret_value(
            SecretId=secret_name(self.stack, keys.client), SecretString=keys.to_secret_string()
        )

    def create(self, client: str, tier: str = DEFAULT_TIER, value: str | None = None) -> ClientKeys:
        check_name("the client", client)
        check_name("the tier", tier)
        plan = self._plan(tier)
        if self.read(client) is not None or self._client_keys(client):
            raise KeysError(f"client {client!r} already has a key; use `rampart keys rotate` or `rampart keys revoke`")
        current = self._new_key(client, 1, plan, value)
        keys = ClientKeys(client, tier, current)
        try:
            self.secretsmanager.create_secret(
                Name=secret_name(self.stack, client),
                Description=f"API key of client {client} of {self.stack} (rampart keys)",
                KmsKeyId=kms_alias(self.stack),
                SecretString=keys.to_secret_string(),
                Tags=[{"Key": "rampart:stack", "Value": self.stack}, {"Key": "rampart:client", "Value": client}],
            )
        except Exception as exc:
            self._delete_keys([current.id])
            if "scheduled for deletion" in str(exc):
                raise KeysError(
                    f"the secret {secret_name(self.stack, client)!r} is scheduled for deletion; restore it or "
                    "delete it for good first"
                ) from None
            raise
        return keys

    def rotate(self, client: str, overlap: dt.timedelta = DEFAULT_OVERLAP, value: str | None = None) -> ClientKeys:
        check_name("the client", client)
        if overlap < dt.timedelta(0):
            raise KeysError("the overlap must not be negative")
        keys = self._require(client)
        keys = self._prune_client(keys)
        if keys.previous is not None:
            raise KeysError(
                f"client {client!r} is inside an overlap window (key {keys.previous.id} valid until "
                f"{keys.previous_expires_at}); end it first with `rampart keys revoke --client {client} --previous`"
            )
        plan = self._plan(keys.tier)
        number = max((_key_number(k) for k in self._client_keys(client)), default=0) + 1
        fresh = self._new_key(client, number, plan, value)
        now = self._clock()
        rotated = ClientKeys(client, keys.tier, fresh, keys.current, rfc3339(now + overlap))
        if overlap == dt.timedelta(0):
            rotated = ClientKeys(client, keys.tier, fresh)
        try:
            self._write(rotated)
        except Exception:
            self._delete_keys([fresh.id])
            raise
        if rotated.previous is None:
            self._delete_keys([keys.current.id])
        else:
            self._describe_previous(rotated)
        return rotated

    def _describe_previous(self, keys: ClientKeys) -> None:
        """Note the window on the old key itself, so that ``list`` can show it without reading secrets."""
        if keys.previous is None:
            return
        text = f"rampart client {keys.client} ({keys.tier}), previous key; expires_at={keys.previous_expires_at}"
        try:
            self.apigateway.update_api_key(
                apiKey=keys.previous.id, patchOperations=[{"op": "replace", "path": "/description", "value": text}]
            )
        except Exception as exc:  # cosmetic: the secret is what counts
            if _error_code(exc) not in ("NotFoundException", "BadRequestException"):
                raise

    def revoke(self, client: str, previous_only: bool = False) -> list[str]:
        check_name("the client", client)
        keys = self.read(client)
        if previous_only:
            if keys is None or keys.previous is None:
                raise KeysError(f"client {client!r} has no previous key to revoke")
            self._delete_keys([keys.previous.id])
            self._write(ClientKeys(client, keys.tier, keys.current))
            return [keys.previous.id]
        ids = [str(k["id"]) for k in self._client_keys(client)]
        if keys is not None:
            ids += [v.id for v in (keys.current, keys.previous) if v is not None and v.id not in ids]
        if keys is None and not ids:
            raise KeysError(f"client {client!r} has no keys in stack {self.stack!r}")
        self._delete_keys(ids)
        if keys is not None:
            # The values are worthless once the keys are gone: delete at once, so the client can be created again.
            self.secretsmanager.delete_secret(SecretId=secret_name(self.stack, client), ForceDeleteWithoutRecovery=True)
        return ids

    def prune(self, client: str | None = None) -> list[tuple[str, str]]:
        """Delete the previous keys whose overlap window has ended; returns (client, key id) pairs."""
        clients = [check_name("the client", client)] if client else self._clients_with_secrets()
        pruned = []
        for name in clients:
            keys = self.read(name)
            if keys is None:
                continue
            after = self._prune_client(keys)
            if keys.previous is not None and after.previous is None:
                pruned.append((name, keys.previous.id))
        return pruned

    def _prune_client(self, keys: ClientKeys) -> ClientKeys:
        if keys.previous is None:
            return keys
        try:
            expired = keys.previous_expires_at is None or parse_rfc3339(keys.previous_expires_at) <= self._clock()
        except ValueError:
            expired = True  # an unreadable window is treated as over: fail closed
        if not expired:
            return keys
        self._delete_keys([keys.previous.id])
        kept = ClientKeys(keys.client, keys.tier, keys.current)
        self._write(kept)
        return kept

    def _require(self, client: str) -> ClientKeys:
        keys = self.read(client)
        if keys is None:
            raise KeysError(
                f"client {client!r} has no keys in stack {self.stack!r}; create one with `rampart keys create`"
            )
        return keys

    def _clients_with_secrets(self) -> list[str]:
        prefix = secret_name(self.stack, "")
        names = []
        for page in self.secretsmanager.get_paginator("list_secrets").paginate(
            Filters=[{"Key": "name", "Values": [prefix]}]
        ):
            for item in page.get("SecretList", []):
                name = str(item.get("Name", ""))
                if name.startswith(prefix) and NAME_PATTERN.fullmatch(name[len(prefix) :]):
                    names.append(name[len(prefix) :])
        return sorted(set(names))


def _key_number(key: dict[str, Any]) -> int:
    match = re.search(r"-(\d+)$", str(key.get("name", "")))
    return int(match.group(1)) if match else 0


def parse_duration(text: str) -> dt.timedelta:
    """``90s``, ``15m``, ``24h``, ``7d`` or plain seconds."""
    match = re.fullmatch(r"\s*([0-9]{1,7})\s*([smhd]?)\s*", text)
    if not match:
        raise ValueError(f"{text!r} is not a duration (e.g. 90s, 15m, 24h, 7d)")
    unit = {"": 1, "s": 1, "m": 60, "h": 3600, "d": 86400}[match.group(2)]
    return dt.timedelta(seconds=int(match.group(1)) * unit)
