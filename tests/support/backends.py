"""The database backends the storage suites run on, each test once per backend.

SQLite is always there; PostgreSQL is the session's `postgres_url` (tests/integration/conftest.py),
skipped with the reason when no server can be had (tests/support/postgres.py). The `backend` and
`database_url` fixtures of tests/integration/conftest.py give a test one database of each.
"""

from __future__ import annotations

BACKENDS = ("sqlite", "postgresql")
