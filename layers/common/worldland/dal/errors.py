"""Storage outcomes the domain reacts to, free of botocore types."""

from __future__ import annotations


class StorageError(Exception):
    """DynamoDB refused a request for a reason the caller cannot fix (throttling after retries, ...)."""


class ConditionFailed(Exception):
    """A conditional write found the item in another state."""


class TransactionCancelled(Exception):
    """A transaction wrote nothing; `reasons` holds one code per item, in request order."""

    def __init__(self, reasons: list[str]) -> None:
        super().__init__(", ".join(reasons))
        self.reasons = reasons

    def failed(self, index: int) -> bool:
        return index < len(self.reasons) and self.reasons[index] == "ConditionalCheckFailed"

    @property
    def conflicted(self) -> bool:
        """Another transaction held an item: safe to retry (DynamoDB's optimistic concurrency)."""
        return "TransactionConflict" in self.reasons and "ConditionalCheckFailed" not in self.reasons


class BadPageToken(Exception):
    """A `next_token` that this API did not hand out."""
