"""Sign-in nonces: issued once, consumed once by a conditional write, dropped later by TTL."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum

from worldland.dal import dynamodb as ddb
from worldland.dal.errors import ConditionFailed


class NonceRejection(StrEnum):
    UNKNOWN = "unknown"
    USED = "used"
    EXPIRED = "expired"
    OTHER_ADDRESS = "other_address"


class NonceRepository:
    def __init__(self, table: str) -> None:
        self.table = table

    def put(self, nonce: str, address: str, expires_at: datetime) -> None:
        item = {"nonce": nonce, "address": address, "expires_at": expires_at, "ttl": int(expires_at.timestamp())}
        with ddb.translated_errors():
            ddb.client().put_item(
                TableName=self.table, Item=ddb.to_item(item), ConditionExpression="attribute_not_exists(nonce)"
            )

    def consume(self, nonce: str, address: str, now: datetime) -> NonceRejection | None:
        """Mark the nonce used. None on success, else why it cannot be used.

        TTL deletes late (up to days), so expiry is part of the condition, not left to TTL.
        """
        try:
            with ddb.translated_errors():
                ddb.client().update_item(
                    TableName=self.table,
                    Key={"nonce": {"S": nonce}},
                    UpdateExpression="SET used_at = :now",
                    ConditionExpression=(
                        "attribute_exists(nonce) AND attribute_not_exists(used_at) "
                        "AND address = :address AND #ttl > :epoch"
                    ),
                    ExpressionAttributeNames={"#ttl": "ttl"},
                    ExpressionAttributeValues={
                        ":now": ddb.to_value(now),
                        ":address": {"S": address},
                        ":epoch": {"N": str(int(now.timestamp()))},
                    },
                )
            return None
        except ConditionFailed:
            return self._why_rejected(nonce, address, now)

    def _why_rejected(self, nonce: str, address: str, now: datetime) -> NonceRejection:
        with ddb.translated_errors():
            item = (
                ddb.client()
                .get_item(TableName=self.table, Key={"nonce": {"S": nonce}}, ConsistentRead=True)
                .get("Item")
            )
        if not item:
            return NonceRejection.UNKNOWN
        if "used_at" in item:
            return NonceRejection.USED
        if item["address"]["S"] != address:
            return NonceRejection.OTHER_ADDRESS
        if int(item["ttl"]["N"]) <= int(now.timestamp()):
            return NonceRejection.EXPIRED
        return NonceRejection.USED
