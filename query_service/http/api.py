"""HTTP routes of the query service: read parameters, ask a view, let `access` hide what the
caller may not see, render the rows.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlencode

from flask import Blueprint, Response, current_app, jsonify, request

from query_service.http import access
from query_service.http import representations as rep
from query_service.http.params import (
    CustomerOrdersArgs,
    NoArgs,
    OrderListArgs,
    StatementArgs,
    TopProductsArgs,
    VersionedReadArgs,
    query_args,
)
from query_service.projection.events import account_stream, is_identifier
from query_service.read_model.changes import TooManyWaiters
from query_service.read_model.pagination import encode_cursor, encode_statement_cursor
from query_service.read_model.view_types import OrderFilter
from query_service.read_model.views import ReadViews
from shared.contract.principal import READ_ALL, READ_OWN
from shared.http.auth import requires
from shared.http.errors import Problem, problem_response
from shared.infra.config import Settings

queries = Blueprint("queries", __name__)

UP_TO_DATE_HEADER = "X-Projection-Up-To-Date"
WAITERS_RETRY_AFTER_S = 1


def _views() -> ReadViews:
    views: ReadViews = current_app.extensions["read_views"]
    return views


@queries.url_value_preprocessor
def _reject_impossible_ids(endpoint: str | None, values: dict[str, Any] | None) -> None:
    """An id the projection would never store cannot be found, so skip the database."""
    for name, value in (values or {}).items():
        if is_identifier(value):
            continue
        if request.path.startswith("/accounts/"):
            raise _not_found("account", value, id_name=name)
        raise _not_found(name.removesuffix("_id"), value)


@queries.errorhandler(TooManyWaiters)
def _too_many_waiters(exc: TooManyWaiters) -> Response:
    return problem_response(
        Problem(
            429,
            "too-many-waiters",
            "Too many waiting reads",
            f"Every ?min_version wait of this server is taken; retry after "
            f"{WAITERS_RETRY_AFTER_S} s, or read without min_version.",
            headers={"Retry-After": str(WAITERS_RETRY_AFTER_S)},
        )
    )


@queries.get("/orders")
@requires(READ_OWN, READ_ALL)
def list_orders() -> Response:
    args = query_args(OrderListArgs())
    return _order_page(args, customer_id=access.listing_customer(args.get("customer_id")))


@queries.get("/orders/<order_id>")
@requires(READ_OWN, READ_ALL)
def get_order(order_id: str) -> Response:
    min_version = query_args(VersionedReadArgs()).get("min_version")
    if min_version is None:
        detail, headers = access.readable_order(_views().order(order_id)), {}
    else:
        detail, reached = _views().wait_for_order(
            order_id, min_version, _max_wait_s(), access.may_read
        )
        headers = _up_to_date(reached)
    if detail is None:
        raise _not_found("order", order_id, headers)
    response = jsonify(rep.order_detail(detail))
    response.headers.update(headers)
    response.headers["ETag"] = f'"{detail.order["version"]}"'
    return response


@queries.get("/orders/<order_id>/history")
@requires(READ_OWN, READ_ALL)
def order_history(order_id: str) -> Response:
    query_args(NoArgs())
    history = access.readable_history(_views().history_of(order_id))
    if history is None:
        raise _not_found("order", order_id)
    return jsonify(
        order_id=order_id,
        version=history.rows[-1]["version"],
        history=[rep.history_entry(row) for row in history.rows],
    )


@queries.get("/orders/<order_id>/kafka-messages")
@requires(READ_ALL)
def order_messages(order_id: str) -> Response:
    query_args(NoArgs())
    found = _views().stream_offsets(order_id)
    if found is None:
        raise _not_found("order", order_id)
    return jsonify(rep.stream_messages(found))


@queries.get("/customers/<customer_id>")
@requires(READ_OWN, READ_ALL)
def get_customer(customer_id: str) -> Response:
    query_args(NoArgs())
    customer = access.readable_customer(_views().customer(customer_id))
    if customer is None:
        raise _not_found("customer", customer_id)
    return jsonify(rep.customer_summary(customer))


@queries.get("/customers/<customer_id>/orders")
@requires(READ_OWN, READ_ALL)
def customer_orders(customer_id: str) -> Response:
    args = query_args(CustomerOrdersArgs())
    customer = access.readable_customer(_views().customer(customer_id))
    if customer is None:
        raise _not_found("customer", customer_id)
    return _order_page(args, customer_id=customer.customer_id)


@queries.get("/accounts/<customer_id>")
@requires(READ_OWN, READ_ALL)
def get_account(customer_id: str) -> Response:
    min_version = query_args(VersionedReadArgs()).get("min_version")
    if min_version is None:
        row, headers = access.readable_account(_views().account(customer_id)), {}
    else:
        row, reached = _views().wait_for_account(
            customer_id, min_version, _max_wait_s(), access.may_read
        )
        headers = _up_to_date(reached)
    if row is None:
        raise _not_found("account", customer_id, headers, id_name="customer_id")
    response = jsonify(rep.account(row))
    response.headers.update(headers)
    response.headers["ETag"] = f'"{row["version"]}"'
    return response


@queries.get("/accounts/<customer_id>/statement")
@requires(READ_OWN, READ_ALL)
def account_statement(customer_id: str) -> Response:
    args = query_args(StatementArgs())
    page = _views().statement(customer_id, args.get("cursor"), args["limit"], access.may_read)
    if page is None:
        raise _not_found("account", customer_id, id_name="customer_id")
    token = encode_statement_cursor(page.next_cursor) if page.next_cursor else None
    response = jsonify(
        customer_id=customer_id,
        lines=[rep.statement_line(row) for row in page.rows],
        next_cursor=token,
    )
    _link_next_page(response, token)
    return response


@queries.get("/accounts/<customer_id>/kafka-messages")
@requires(READ_ALL)
def account_messages(customer_id: str) -> Response:
    query_args(NoArgs())
    found = _views().stream_offsets(account_stream(customer_id))
    if found is None:
        raise _not_found("account", customer_id, id_name="customer_id")
    return jsonify(rep.stream_messages(found))


@queries.get("/products/top")
@requires(READ_ALL)
def top_products() -> Response:
    args = query_args(TopProductsArgs())
    rows = _views().top_products(args["by"], args["limit"])
    return jsonify(by=args["by"], products=[rep.product_sales(row) for row in rows])


@queries.get("/products/<product_id>/sales")
@requires(READ_ALL)
def product_sales(product_id: str) -> Response:
    query_args(NoArgs())
    row = _views().product(product_id)
    if row is None:
        raise _not_found("product", product_id)
    return jsonify(rep.product_sales(row))


def _order_page(args: dict[str, Any], customer_id: str | None) -> Response:
    filters = OrderFilter(
        status=args.get("status"),
        customer_id=customer_id,
        created_after=args.get("created_after"),
        created_before=args.get("created_before"),
    )
    page = _views().list_orders(filters, args.get("cursor"), args["limit"])
    token = encode_cursor(page.next_cursor) if page.next_cursor else None
    response = jsonify(orders=[rep.order_summary(row) for row in page.rows], next_cursor=token)
    _link_next_page(response, token)
    return response


def _link_next_page(response: Response, token: str | None) -> None:
    """Link rel=next: this request's URL with the next page's cursor."""
    if token is not None:
        next_args = {**request.args.to_dict(), "cursor": token}
        response.headers["Link"] = f'<{request.base_url}?{urlencode(next_args)}>; rel="next"'


def _max_wait_s() -> float:
    settings: Settings = current_app.config["SETTINGS"]
    return settings.read_your_writes_max_wait_ms / 1000


def _up_to_date(reached: bool) -> dict[str, str]:
    return {UP_TO_DATE_HEADER: "true" if reached else "false"}


def _not_found(
    kind: str,
    identifier: str,
    headers: dict[str, str] | None = None,
    id_name: str | None = None,
) -> Problem:
    identifier = identifier[:100]  # echo enough to recognise it, not a whole hostile path
    return Problem(
        404,
        f"{kind}-not-found",
        f"{kind.capitalize()} not found",
        f"No {kind} with id {identifier!r} is in the read model.",
        {id_name or f"{kind}_id": identifier},
        headers=headers,
    )
