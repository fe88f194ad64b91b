"""The README's "From Python" example, run as written against the running services: only the
URLs and the token are this system's; each print must show what its comment says."""

from __future__ import annotations

import contextlib
import io
import re

import pytest

from tests.support.order_system import OrderSystem
from tests.support.processes import REPO_ROOT

pytestmark = pytest.mark.kafka


def readme_example() -> str:
    readme = (REPO_ROOT / "README.md").read_text()
    section = readme.split("### From Python", 1)[1]
    found = re.search(r"```python\n(.*?)```", section, re.DOTALL)
    assert found is not None, "README has no python block under 'From Python'"
    return found.group(1)


def test_the_readme_example_prints_what_it_says(system: OrderSystem) -> None:
    code = readme_example()
    urls = f'"{system.command_api.base_url}", "{system.query_api.base_url}"'
    code, urls_replaced = re.subn(r"(?m)^(COMMAND_API, QUERY_API = ).*$", rf"\g<1>{urls}", code)
    token = system.admin_headers["Authorization"].removeprefix("Bearer ")
    code, token_replaced = re.subn(r"(?m)^(TOKEN = ).*$", rf'\g<1>"{token}"', code)
    assert urls_replaced == token_replaced == 1
    promised = [
        line.split("# ", 1)[1].split(":")[0].strip()
        for line in code.splitlines()
        if line.strip().startswith("print(")
    ]

    printed = io.StringIO()
    with contextlib.redirect_stdout(printed):
        exec(compile(code, "README.md", "exec"), {"__name__": "readme_example"})

    assert printed.getvalue().splitlines() == promised
