"""HTTP routes for customer accounts: parse, call AccountService, render the result."""

from __future__ import annotations

from typing import Any

from flask import Blueprint, Response, current_app, jsonify, url_for

from command_service.application.accounts import AccountResult, AccountService
from command_service.domain import account as domain
from command_service.http.command_results import (
    command_context,
    command_response,
    versioned_response,
)
from command_service.http.idempotency import idempotent
from command_service.http.json_body import read_json_body
from command_service.http.query_params import as_of_from_query
from command_service.http.schemas import DEPOSIT, OPEN_ACCOUNT, load_or_raise
from shared.contract.money import format_cents
from shared.contract.principal import (
    ACCOUNTS_DEPOSIT,
    ACCOUNTS_WRITE,
    EVENTS_READ,
    READ_ALL,
    READ_OWN,
)
from shared.http.auth import current_principal, requires

accounts = Blueprint("accounts", __name__)


def _service() -> AccountService:
    service: AccountService = current_app.extensions["account_service"]
    return service


def _account_result(result: AccountResult) -> dict[str, Any]:
    return {
        "customer_id": result.customer_id,
        "version": result.version,
        "position": result.position,
        "balance_cents": result.balance_cents,
        "balance": format_cents(result.balance_cents),
    }


@accounts.post("/accounts")
@requires(ACCOUNTS_WRITE)
@idempotent
def open_account() -> Response:
    payload = load_or_raise(OPEN_ACCOUNT, read_json_body())
    command = domain.OpenAccount(payload["customer_id"], payload.get("initial_deposit_cents", 0))
    return _opened_response(_service().open_account(command, command_context(_opened_response)))


def _opened_response(result: AccountResult) -> Response:
    location = url_for("accounts.get_account", customer_id=result.customer_id)
    return command_response(result, _account_result(result), 201, location)


@accounts.post("/accounts/<customer_id>/deposits")
@requires(ACCOUNTS_DEPOSIT)
@idempotent
def deposit(customer_id: str) -> Response:
    payload = load_or_raise(DEPOSIT, read_json_body())
    command = domain.DepositFunds(customer_id, payload["amount_cents"], payload.get("deposit_id"))
    return _deposited_response(_service().deposit(command, command_context(_deposited_response)))


def _deposited_response(result: AccountResult) -> Response:
    return command_response(result, _account_result(result))


@accounts.get("/accounts/<customer_id>")
@requires(READ_OWN, READ_ALL)
def get_account(customer_id: str) -> Response:
    """The account rebuilt from its events: strongly consistent, unlike the query service."""
    state = _service().account_state(customer_id, current_principal(), as_of_from_query())
    body = {
        "customer_id": state.customer_id,
        "version": state.version,
        "balance_cents": state.balance_cents,
        "balance": format_cents(state.balance_cents),
        "deposited_cents": state.deposited_cents,
        "debited_cents": state.debited_cents,
        "credited_cents": state.credited_cents,
    }
    return versioned_response(body, state.version)


@accounts.get("/accounts/<customer_id>/events")
@requires(EVENTS_READ)
def account_events(customer_id: str) -> Response:
    events = _service().account_events(customer_id)
    return jsonify(
        customer_id=customer_id,
        version=events[-1].version,
        events=[event.to_dict() for event in events],
    )
