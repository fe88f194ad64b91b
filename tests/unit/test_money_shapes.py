"""The OpenAPI shape of each Money field says exactly what the field accepts (issue 14): a
decimal string matches the stated pattern if and only if the field takes it, and a JSON number
within the stated bounds with at most two decimals is taken."""

from __future__ import annotations

import re
from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st
from marshmallow import ValidationError

from command_service.http.openapi_components import decimal_pattern, money_shape
from command_service.http.schemas import DepositSchema, Money, OpenAccountSchema, OrderLineSchema

FIELDS = {
    "unit_price": OrderLineSchema().fields["unit_price"],
    "initial_deposit": OpenAccountSchema().fields["initial_deposit"],
    "amount": DepositSchema().fields["amount"],
}
# Plain decimal strings, near the bounds too: leading zeros, 0 to 3 decimals, 1 to 11 digits.
DECIMAL_TEXT = st.from_regex(r"\A0{0,3}[0-9]{1,11}(\.[0-9]{0,3})?\Z").filter(
    lambda text: not text.endswith(".")
) | st.sampled_from(["0", "0.00", "0.01", "1000000", "1000000.00", "1000000.01", "999999.99"])


def _accepts(field: Money, value: object) -> bool:
    try:
        field.deserialize(value)
    except ValidationError:
        return False
    return True


@pytest.mark.parametrize("name", FIELDS)
@given(text=DECIMAL_TEXT)
def test_a_decimal_string_matches_the_pattern_iff_the_field_takes_it(name: str, text: str) -> None:
    field = FIELDS[name]
    assert isinstance(field, Money)
    pattern = money_shape(field)["anyOf"][0]["pattern"]
    assert (re.fullmatch(pattern, text) is not None) == _accepts(field, text), (pattern, text)


@pytest.mark.parametrize("name", FIELDS)
@given(data=st.data())
def test_every_number_within_the_stated_bounds_is_taken(name: str, data: st.DataObject) -> None:
    field = FIELDS[name]
    assert isinstance(field, Money)
    number = money_shape(field)["anyOf"][1]
    low, high = (
        int(Decimal(str(number["minimum"])) * 100),
        int(Decimal(str(number["maximum"])) * 100),
    )
    cents = data.draw(st.integers(low, high))
    assert _accepts(field, Decimal(cents) / 100)
    assert not _accepts(field, Decimal(high + 1) / 100)
    assert not _accepts(field, Decimal(low - 1) / 100)


def test_bounds_without_a_pattern_are_refused() -> None:
    with pytest.raises(ValueError, match="upper bound"):
        decimal_pattern(Decimal(0), Decimal("12.34"))
    with pytest.raises(ValueError, match="lower bound"):
        decimal_pattern(Decimal("0.50"), Decimal(100))
