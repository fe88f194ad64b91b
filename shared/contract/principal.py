"""Who issued a command or a read: the verified token's subject, its customer and its scopes.

The scope names are a contract that clients and operators script against (docs/security.md).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

ORDERS_WRITE = "orders:write"
ORDERS_FULFIL = "orders:fulfil"
ACCOUNTS_WRITE = "accounts:write"
ACCOUNTS_DEPOSIT = "accounts:deposit"
READ_OWN = "read:own"
READ_ALL = "read:all"
EVENTS_READ = "events:read"
METRICS_READ = "metrics:read"
ADMIN = "admin"

SCOPES = (
    ORDERS_WRITE,
    ORDERS_FULFIL,
    ACCOUNTS_WRITE,
    ACCOUNTS_DEPOSIT,
    READ_OWN,
    READ_ALL,
    EVENTS_READ,
    METRICS_READ,
    ADMIN,
)


@dataclass(frozen=True)
class Principal:
    """The caller, as its verified token names it; `admin` holds every scope."""

    sub: str
    iss: str
    scopes: frozenset[str]
    customer_id: str | None = None
    client_id: str | None = None
    jti: str | None = None

    def has(self, scope: str) -> bool:
        """Whether the token grants `scope` (directly or through `admin`)."""
        return scope in self.scopes or ADMIN in self.scopes

    def has_any(self, scopes: Iterable[str]) -> bool:
        """Whether the token grants at least one of `scopes`."""
        return any(self.has(scope) for scope in scopes)

    def owns(self, customer_id: str) -> bool:
        """Whether the token is the customer's own (its customer_id claim)."""
        return self.customer_id is not None and self.customer_id == customer_id

    def may_read(self, customer_id: str) -> bool:
        """read:all, or read:own on the caller's own data."""
        return self.has(READ_ALL) or (self.has(READ_OWN) and self.owns(customer_id))

    def may_act_for(self, scope: str, customer_id: str) -> bool:
        """`scope` on the caller's own data; `admin` on anyone's."""
        return self.has(ADMIN) or (self.has(scope) and self.owns(customer_id))

    def to_metadata(self) -> dict[str, str]:
        """The audit record stored in every event's metadata (no scopes: they change)."""
        record = {"sub": self.sub, "iss": self.iss}
        if self.customer_id is not None:
            record["customer_id"] = self.customer_id
        if self.client_id is not None:
            record["client_id"] = self.client_id
        if self.jti is not None:
            record["jti"] = self.jti
        return record

    @classmethod
    def from_claims(cls, claims: Mapping[str, Any]) -> Principal:
        """Build from verified JWT claims: `scope` (space-separated) or `scp` (a list)."""
        raw = claims.get("scope", claims.get("scp", ""))
        scopes = raw.split() if isinstance(raw, str) else [str(s) for s in raw or ()]
        customer = claims.get("customer_id")
        client = claims.get("azp", claims.get("client_id"))
        jti = claims.get("jti")
        return cls(
            sub=str(claims["sub"]),
            iss=str(claims["iss"]),
            scopes=frozenset(scopes),
            customer_id=str(customer) if customer is not None else None,
            client_id=str(client) if client is not None else None,
            jti=str(jti) if jti is not None else None,
        )
