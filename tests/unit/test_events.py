"""Parsing and validation of observation and label values (no broker)."""

from __future__ import annotations

import pytest

from streamlearn.learning.events import (
    Reason,
    Rejected,
    check_target,
    parse_key,
    parse_label,
    parse_observation,
)


@pytest.mark.parametrize(
    ("value", "reason"),
    [
        (b"not json", Reason.NOT_JSON),
        (b'{"id": 1, "x": {"a": NaN}}', Reason.NOT_JSON),
        (b'{"id": 1, "x": {"a": 1e999}}', Reason.NOT_JSON),
        (b"[1, 2]", Reason.NOT_OBJECT),
        (b'"text"', Reason.NOT_OBJECT),
        (None, Reason.NOT_OBJECT),
        (b'{"x": {}}', Reason.BAD_ID),
        (b'{"id": 1.5, "x": {}}', Reason.BAD_ID),
        (b'{"id": true, "x": {}}', Reason.BAD_ID),
        (b'{"id": null, "x": {}}', Reason.BAD_ID),
        (b'{"id": 1}', Reason.BAD_FEATURES),
        (b'{"id": 1, "x": [1]}', Reason.BAD_FEATURES),
        (b'{"id": 1, "x": {"a": {"nested": 1}}}', Reason.BAD_FEATURES),
        (b'{"id": 1, "x": {"a": 1}, "ts": "yesterday"}', Reason.BAD_TS),
        (b'{"id": 1, "x": {"a": 1}, "ts": [1]}', Reason.BAD_TS),
        (b'{"id": 1, "x": {"a": 1}, "pad": "' + b"a" * 300_000 + b'"}', Reason.TOO_LARGE),
    ],
)
def test_bad_observations_are_rejected_with_their_reason(value, reason):
    with pytest.raises(Rejected) as caught:
        parse_observation(value, default_ts=0.0)
    assert caught.value.reason is reason
    assert str(caught.value).startswith(reason.value + ": ")


@pytest.mark.parametrize(
    ("value", "reason"),
    [
        (b'{"id": 1}', Reason.BAD_TARGET),
        (b'{"id": 1, "y": null}', Reason.BAD_TARGET),
        (b'{"id": 1, "y": [1]}', Reason.BAD_TARGET),
        (b'{"id": 1, "y": 2, "x": "a"}', Reason.BAD_FEATURES),
        (b'{"y": 2}', Reason.BAD_ID),
    ],
)
def test_bad_labels_are_rejected_with_their_reason(value, reason):
    with pytest.raises(Rejected) as caught:
        parse_label(value, default_ts=0.0)
    assert caught.value.reason is reason


def test_timestamps_from_numbers_iso_strings_or_the_record():
    assert parse_observation(b'{"id": "a", "x": {}, "ts": 5}', 1.0).ts == 5.0
    iso = parse_observation(b'{"id": "a", "x": {}, "ts": "1970-01-01T00:01:00Z"}', 1.0)
    assert iso.ts == 60.0
    naive = parse_observation(b'{"id": "a", "x": {}, "ts": "1970-01-01T00:01:00"}', 1.0)
    assert naive.ts == 60.0  # naive times are UTC
    assert parse_observation(b'{"id": "a", "x": {}}', 123.5).ts == 123.5


def test_label_with_features_keeps_them():
    label = parse_label(b'{"id": 3, "y": 1.5, "x": {"a": 2}}', 0.0)
    assert (label.id, label.y, label.x) == (3, 1.5, {"a": 2})


def test_keys_must_be_present_and_utf8():
    assert parse_key(b"station-7") == "station-7"
    for raw, reason in (
        (None, Reason.MISSING_KEY),
        (b"", Reason.MISSING_KEY),
        (b"\xff", Reason.BAD_KEY),
    ):
        with pytest.raises(Rejected) as caught:
            parse_key(raw)
        assert caught.value.reason is reason


@pytest.mark.parametrize(
    "raw",
    [
        (42).to_bytes(8, "big"),  # a Java long key: valid UTF-8, all but one byte NUL
        b"station\t7",
        b"station-7\n",
        b"\x7fkey",
        "key\u0085".encode(),  # a C1 control character
    ],
)
def test_keys_with_control_characters_are_rejected_as_binary(raw):
    with pytest.raises(Rejected) as caught:
        parse_key(raw)
    assert caught.value.reason is Reason.BAD_KEY
    assert "text" in str(caught.value) and "binary" in str(caught.value)


def test_text_keys_with_spaces_and_any_script_are_accepted():
    for key in ("HOBBIES_1_001_CA_1", "station 7", "café", "駅-7", "a\u00a0b", "👩\u200d🔬"):
        assert parse_key(key.encode()) == key


def test_targets_must_suit_the_task():
    check_target(2.5, classifier=False)
    check_target("cat", classifier=True)
    check_target(True, classifier=True)
    for y, classifier in (("12", False), (True, False), (1.5, True)):
        with pytest.raises(Rejected) as caught:
            check_target(y, classifier)
        assert caught.value.reason is Reason.BAD_TARGET
