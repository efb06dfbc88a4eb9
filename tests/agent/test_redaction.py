"""The log filter masks the secrets the agent holds, should any line ever carry one."""

from __future__ import annotations

import logging

from worldland_node.redaction import MASK, RedactingFilter

KEY = "0x" + "ab" * 32


def test_a_registered_secret_is_masked_in_message_and_arguments() -> None:
    redactor = RedactingFilter()
    redactor.add(KEY, KEY.removeprefix("0x"), "short")
    record = logging.LogRecord("t", logging.INFO, __file__, 1, "key %s and %s", (KEY, "short"), None)
    assert redactor.filter(record)
    assert record.getMessage() == f"key {MASK} and short"  # short strings are left alone: too many false hits


def test_filters_do_not_share_secrets() -> None:
    RedactingFilter().add(KEY)
    record = logging.LogRecord("t", logging.INFO, __file__, 1, "key %s", (KEY,), None)
    RedactingFilter().filter(record)
    assert record.getMessage() == f"key {KEY}"


def test_a_secret_inside_a_longer_one_never_leaves_part_of_the_longer_one() -> None:
    # Whatever order they were added in, the longer form is masked whole.
    for order in [(KEY, KEY.removeprefix("0x")), (KEY.removeprefix("0x"), KEY)]:
        redactor = RedactingFilter()
        redactor.add(*order)
        record = logging.LogRecord("t", logging.INFO, __file__, 1, "key %s", (KEY,), None)
        redactor.filter(record)
        assert record.getMessage() == f"key {MASK}"
