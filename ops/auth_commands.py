"""`orders-admin token` and `orders-admin keys`: the local signing key of $DATA_DIR/auth/.

`token` prints a bearer token signed with it; `keys` creates it (and a service token for the
projector) where a deployment without an identity provider, e.g. compose, verifies with its
jwks.json. Both read the same environment as `make run` (DATA_DIR, AUTH_ISSUER, AUTH_AUDIENCE),
so the services accept the tokens. A real deployment gets tokens from its identity provider.
"""

from __future__ import annotations

import argparse
import sys

from shared.contract.principal import EVENTS_READ, METRICS_READ, SCOPES
from shared.infra.auth_setup import mint_local_token
from shared.infra.config import Settings
from shared.infra.dev_keys import auth_dir, jwks_path, write_shared_token_file, write_token_file

DEFAULT_TTL_S = 3600
MAX_TTL_S = 30 * 86_400
SERVICE_TOKEN_FILE = "query-projector.token"
# orders-console reads both APIs with this one (CONSOLE_TOKEN_FILE).
CONSOLE_TOKEN_FILE = "console.token"
CONSOLE_SCOPES = ("read:all", "events:read", "metrics:read")
# Prometheus scrapes both /metrics with this one (deploy/prometheus/, docs/monitoring.md).
PROMETHEUS_TOKEN_FILE = "prometheus.token"


def add_auth_commands(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Register `token` and `keys` on the orders-admin command line."""
    token = commands.add_parser(
        "token",
        help="print a token signed with the dev key (AUTH_MODE=dev)",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    token.add_argument("--sub", required=True, help="the subject: who the token names")
    token.add_argument("--customer", metavar="CUSTOMER_ID", help="the customer_id claim")
    token.add_argument(
        "--scope",
        required=True,
        help=f'space-separated scopes, e.g. "orders:write read:own"; known: {" ".join(SCOPES)}',
    )
    token.add_argument(
        "--ttl",
        type=_ttl,
        default=DEFAULT_TTL_S,
        metavar="SECONDS",
        help=f"lifetime in seconds (default {DEFAULT_TTL_S}, at most {MAX_TTL_S})",
    )
    token.set_defaults(command=print_token)

    keys = commands.add_parser(
        "keys",
        help="create the signing key, jwks.json, the projector's, console's, Prometheus' tokens",
        description="Idempotent: an existing key is kept; the service token is minted anew.",
    )
    keys.add_argument(
        "--service-token-ttl",
        type=_ttl,
        default=MAX_TTL_S,
        metavar="SECONDS",
        help=f"lifetime of {SERVICE_TOKEN_FILE} (default {MAX_TTL_S})",
    )
    keys.set_defaults(command=create_keys)


def print_token(args: argparse.Namespace, settings: Settings) -> int:
    """Mint and print the token; 2 for an unknown scope or configuration."""
    scopes = args.scope.split()
    unknown = sorted(set(scopes) - set(SCOPES))
    if unknown or not scopes:
        print(
            f"orders-admin token: unknown scope(s): {' '.join(unknown) or '(none given)'}; "
            f"known: {' '.join(SCOPES)}",
            file=sys.stderr,
        )
        return 2
    print(
        mint_local_token(
            settings, sub=args.sub, scopes=scopes, ttl_s=args.ttl, customer_id=args.customer
        )
    )
    return 0


def create_keys(args: argparse.Namespace, settings: Settings) -> int:
    """Make the key pair if missing and write the projector's token beside it."""
    token = mint_local_token(
        settings,
        sub="query-projector",
        scopes=[EVENTS_READ],
        ttl_s=args.service_token_ttl,
        client_id="query-projector",
    )
    service_token = auth_dir(settings.data_dir) / SERVICE_TOKEN_FILE
    write_token_file(service_token, token)
    console = mint_local_token(
        settings,
        sub="orders-console",
        scopes=CONSOLE_SCOPES,
        ttl_s=args.service_token_ttl,
        client_id="orders-console",
    )
    console_token = auth_dir(settings.data_dir) / CONSOLE_TOKEN_FILE
    write_token_file(console_token, console)
    scraper = mint_local_token(
        settings,
        sub="prometheus",
        scopes=[METRICS_READ],
        ttl_s=args.service_token_ttl,
        client_id="prometheus",
    )
    scraper_token = auth_dir(settings.data_dir) / PROMETHEUS_TOKEN_FILE
    write_shared_token_file(scraper_token, scraper)
    print(
        f"public keys: {jwks_path(settings.data_dir)}\nprojector token: {service_token}\n"
        f"console token: {console_token}\nprometheus token: {scraper_token}"
    )
    return 0


def _ttl(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number of seconds: {text!r}") from None
    if not 1 <= value <= MAX_TTL_S:
        raise argparse.ArgumentTypeError(f"must be between 1 and {MAX_TTL_S}")
    return value
