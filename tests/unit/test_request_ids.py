"""Request ids are canonical, unique, random UUID version 4 strings."""

from __future__ import annotations

import uuid

from serving.request_ids import new_request_ids


def test_ids_are_canonical_version_4_uuids() -> None:
    ids = new_request_ids(5_000)
    assert len(ids) == 5_000
    for text in ids:
        parsed = uuid.UUID(text)
        assert parsed.version == 4
        assert parsed.variant == uuid.RFC_4122
        assert str(parsed) == text


def test_ids_are_unique_across_and_within_calls() -> None:
    ids = new_request_ids(20_000) + new_request_ids(20_000)
    assert len(set(ids)) == len(ids)


def test_every_random_hex_position_varies() -> None:
    # A fixed digit anywhere but the version and variant positions would mean
    # the ids carry fewer random bits than uuid4's.
    ids = new_request_ids(2_000)
    for position in range(36):
        seen = {text[position] for text in ids}
        if position in (8, 13, 18, 23):
            assert seen == {"-"}
        elif position == 14:
            assert seen == {"4"}
        elif position == 19:
            assert seen == set("89ab")
        else:
            assert len(seen) == 16, position


def test_zero_ids() -> None:
    assert new_request_ids(0) == []
