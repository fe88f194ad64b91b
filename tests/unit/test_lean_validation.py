"""The PlaceOrder shortcut agrees with marshmallow: same values for what it accepts, and it
accepts nothing marshmallow refuses (those go to marshmallow, so messages stay its own)."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from marshmallow import ValidationError

from command_service.http.schemas import PLACE_ORDER, load_or_raise, valid_place_order


def line(**overrides: Any) -> dict[str, Any]:
    """A valid order line, with some fields replaced or (as ...) removed."""
    base: dict[str, Any] = {"product_id": "p-1", "quantity": 2, "unit_price": "12.50"}
    base.update(overrides)
    return {k: v for k, v in base.items() if v is not ...}


def order(**overrides: Any) -> dict[str, Any]:
    """A valid PlaceOrder body, with some fields replaced or (as ...) removed."""
    base: dict[str, Any] = {"customer_id": "c-1", "lines": [line()]}
    base.update(overrides)
    return {k: v for k, v in base.items() if v is not ...}


CASES: list[Any] = [
    order(),
    order(order_id="o.1_x-Y"),
    order(lines=[line(unit_price=Decimal("0")), line(quantity=10_000, unit_price=7)]),
    order(lines=[line(unit_price=" 3.10 "), line(unit_price=Decimal("999999999.99"))]),
    order(lines=[line() for _ in range(100)]),
    order(lines=[line() for _ in range(101)]),
    order(lines=[]),
    order(lines="x"),
    order(lines=[line(), "x"]),
    order(lines=[line(quantity=0)]),
    order(lines=[line(quantity=10_001)]),
    order(lines=[line(quantity=True)]),
    order(lines=[line(quantity=Decimal("2"))]),
    order(lines=[line(quantity="2")]),
    order(lines=[line(quantity=None)]),
    order(lines=[line(unit_price=...)]),
    order(lines=[line(extra=1)]),
    order(lines=[line(unit_price="1.001")]),
    order(lines=[line(unit_price="-1")]),
    order(lines=[line(unit_price="1000000000")]),
    order(lines=[line(unit_price="NaN")]),
    order(lines=[line(unit_price="Infinity")]),
    order(lines=[line(unit_price="abc")]),
    order(lines=[line(unit_price=True)]),
    order(lines=[line(unit_price=None)]),
    order(lines=[line(unit_price=1.5)]),
    order(lines=[line(unit_price=Decimal("1E+2"))]),
    order(lines=[line(product_id="")]),
    order(lines=[line(product_id="p 1")]),
    order(lines=[line(product_id="p-1\n")]),
    order(lines=[line(product_id="x" * 65)]),
    order(lines=[line(product_id=5)]),
    order(customer_id=...),
    order(customer_id=None),
    order(customer_id="é"),
    order(order_id=None),
    order(order_id=""),
    order(order_id=12),
    order(unknown="x"),
    [order()],
    "order",
    None,
]


def marshmallow_load(payload: Any) -> dict[str, Any] | None:
    """What the schema alone returns, or None when it refuses."""
    try:
        result = PLACE_ORDER.load(payload)
    except ValidationError:
        return None
    assert isinstance(result, dict)
    return result


def same(fast: dict[str, Any], slow: dict[str, Any]) -> bool:
    """Equal, with every Decimal written the same (12.50 stays 12.50, not 12.5)."""
    return repr(fast) == repr(slow) or (
        fast == slow and str(sorted(fast.items())) == str(sorted(slow.items()))
    )


def check(payload: Any) -> None:
    fast = valid_place_order(payload)
    slow = marshmallow_load(payload)
    if slow is None:
        assert fast is None, "the shortcut accepted what marshmallow refuses"
    elif fast is not None:
        assert same(fast, slow)


@pytest.mark.parametrize("payload", CASES, ids=range(len(CASES)))
def test_the_shortcut_agrees_with_marshmallow(payload: Any) -> None:
    check(payload)


def test_the_shortcut_takes_the_common_bodies() -> None:
    assert valid_place_order(order()) is not None
    assert valid_place_order(order(order_id="o-1", lines=[line(), line(unit_price=5)])) is not None


def test_refused_bodies_get_marshmallows_own_messages() -> None:
    body = order(lines=[line(quantity=0, unit_price="1.001")], unknown=1)
    with pytest.raises(ValidationError) as refused:
        load_or_raise(PLACE_ORDER, body)
    with pytest.raises(ValidationError) as expected:
        PLACE_ORDER.load(body)
    assert refused.value.messages == expected.value.messages


_TEXT = st.sampled_from(["p-1", "", "a b", "x" * 64, "x" * 65, "é", "c.1_2-3", " 1.5 "])
_PRICE = st.one_of(
    st.sampled_from(["12.50", "1.001", "-1", "1e3", "NaN", " 7 ", "999999999.99", "1000000000"]),
    st.decimals(allow_nan=True, allow_infinity=True, places=None),
    st.integers(-5, 2_000_000_000),
    st.booleans(),
    st.none(),
    st.floats(),
)
_QUANTITY = st.one_of(st.integers(-2, 10_002), st.booleans(), st.none(), st.just("2"))
_LINE = st.dictionaries(
    st.sampled_from(["product_id", "quantity", "unit_price", "other"]),
    st.one_of(_TEXT, _PRICE, _QUANTITY),
    max_size=4,
) | st.builds(
    lambda p, q, u: {"product_id": p, "quantity": q, "unit_price": u}, _TEXT, _QUANTITY, _PRICE
)
_ORDER = st.builds(
    lambda extra, lines: {**extra, "lines": lines},
    st.dictionaries(st.sampled_from(["order_id", "customer_id", "x"]), _TEXT | st.none()),
    st.lists(_LINE, max_size=3) | st.none() | _TEXT,
)


@settings(max_examples=400, deadline=None)
@given(_ORDER)
def test_the_shortcut_agrees_with_marshmallow_on_generated_bodies(payload: Any) -> None:
    check(payload)
