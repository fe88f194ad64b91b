"""Ids made per request read exactly like str(uuid.uuid4())."""

from __future__ import annotations

import uuid

from shared.http.random_ids import uuid4_text


def test_uuid4_text_is_a_canonical_random_uuid() -> None:
    made = {uuid4_text() for _ in range(2000)}
    assert len(made) == 2000
    variants = set()
    for text in made:
        parsed = uuid.UUID(text)
        assert str(parsed) == text
        assert parsed.version == 4
        assert parsed.variant == uuid.RFC_4122
        variants.add(text[19])
    assert variants == set("89ab")
