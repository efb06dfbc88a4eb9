"""Provider items and their per-GPU-model listings (the index that search by model queries)."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from typing import Any

from worldland.dal import dynamodb as ddb
from worldland.dal.errors import ConditionFailed
from worldland.models.providers import MiningReport, ProviderRecord, ProviderStatus

STATUS_PRICE_INDEX = "StatusPriceIndex"
STATUS_HEARTBEAT_INDEX = "StatusHeartbeatIndex"
LOSS_PENDING_INDEX = "LossPendingIndex"
# Set when a provider goes Offline, removed once its jobs are dealt with or it heartbeats again.
LOSS_BUCKET = "pending"
MODEL_PRICE_INDEX = "ModelPriceIndex"
# Registration re-writes the counters; it is conditioned on this attribute, which every
# allocation and release bumps, so a registration never overwrites a concurrent allocation.
VERSION = "version"


def _record(item: dict[str, Any]) -> ProviderRecord:
    return ProviderRecord.model_validate(ddb.from_item(item))


class ProviderRepository:
    def __init__(self, providers_table: str, gpus_table: str) -> None:
        self.providers_table = providers_table
        self.gpus_table = gpus_table

    # ------------------------------------------------------------------ reads
    def get(self, provider_id: str) -> ProviderRecord | None:
        found = self.get_with_version(provider_id)
        return found[0] if found else None

    def get_with_version(self, provider_id: str) -> tuple[ProviderRecord, int] | None:
        with ddb.translated_errors():
            item = (
                ddb.client()
                .get_item(TableName=self.providers_table, Key={"provider_id": {"S": provider_id}}, ConsistentRead=True)
                .get("Item")
            )
        if not item:
            return None
        return _record(item), int(item.get(VERSION, {"N": "0"})["N"])

    def batch_get(self, provider_ids: Iterable[str]) -> dict[str, ProviderRecord]:
        ids = list(dict.fromkeys(provider_ids))
        found: dict[str, ProviderRecord] = {}
        for start in range(0, len(ids), 100):
            request: dict[str, Any] = {
                self.providers_table: {"Keys": [{"provider_id": {"S": i}} for i in ids[start : start + 100]]}
            }
            while request:
                with ddb.translated_errors():
                    answer = ddb.client().batch_get_item(RequestItems=request)
                for item in answer["Responses"].get(self.providers_table, []):
                    record = _record(item)
                    found[record.provider_id] = record
                request = answer.get("UnprocessedKeys") or {}
        return found

    def page(self, limit: int, token: str | None) -> tuple[list[ProviderRecord], str | None]:
        """All providers, in storage order (the plain listing; searches use the indexes)."""
        args: dict[str, Any] = {"TableName": self.providers_table, "Limit": limit}
        if start := ddb.decode_page_token(token):
            args["ExclusiveStartKey"] = start
        with ddb.translated_errors():
            answer = ddb.client().scan(**args)
        return [_record(i) for i in answer.get("Items", [])], ddb.encode_page_token(answer.get("LastEvaluatedKey"))

    def by_status(
        self, status: ProviderStatus, *, cheapest_first: bool = True, limit: int = 100, token: str | None = None
    ) -> tuple[list[ProviderRecord], str | None]:
        args: dict[str, Any] = {
            "TableName": self.providers_table,
            "IndexName": STATUS_PRICE_INDEX,
            "KeyConditionExpression": "#s = :s",
            "ExpressionAttributeNames": {"#s": "status"},
            "ExpressionAttributeValues": {":s": {"S": status.value}},
            "ScanIndexForward": cheapest_first,
            "Limit": limit,
        }
        if start := ddb.decode_page_token(token):
            args["ExclusiveStartKey"] = start
        with ddb.translated_errors():
            answer = ddb.client().query(**args)
        return [_record(i) for i in answer.get("Items", [])], ddb.encode_page_token(answer.get("LastEvaluatedKey"))

    def all_by_status(self, status: ProviderStatus) -> list[ProviderRecord]:
        records, token = self.by_status(status, limit=1000)
        while token:
            more, token = self.by_status(status, limit=1000, token=token)
            records += more
        return records

    def listings_for_model(self, gpu_model: str, max_price: float | None = None) -> list[str]:
        """Ids of providers offering `gpu_model`, cheapest first, optionally under a price."""
        condition = "gpu_model = :m"
        values: dict[str, Any] = {":m": {"S": gpu_model}}
        if max_price is not None:
            condition += " AND gpu_price_per_hour <= :p"
            values[":p"] = ddb.to_value(max_price)
        args: dict[str, Any] = {
            "TableName": self.gpus_table,
            "IndexName": MODEL_PRICE_INDEX,
            "KeyConditionExpression": condition,
            "ExpressionAttributeValues": values,
            "ProjectionExpression": "provider_id",
        }
        ids: list[str] = []
        with ddb.translated_errors():
            for page in ddb.client().get_paginator("query").paginate(**args):
                ids += [item["provider_id"]["S"] for item in page.get("Items", [])]
        return ids

    def heartbeat_older_than(self, status: ProviderStatus, cutoff: datetime) -> list[tuple[str, str]]:
        """(provider_id, last_heartbeat) of providers in `status` whose last heartbeat is before `cutoff`."""
        return self._silent_since(STATUS_HEARTBEAT_INDEX, ("status", status.value), cutoff)

    def loss_pending(self, cutoff: datetime) -> list[tuple[str, str]]:
        """(provider_id, last_heartbeat) of Offline providers silent since before `cutoff` whose jobs
        have not been dealt with yet (see `loss_handled`)."""
        return self._silent_since(LOSS_PENDING_INDEX, ("loss_bucket", LOSS_BUCKET), cutoff)

    def loss_handled(self, provider_id: str, seen_heartbeat: str) -> None:
        """The lost provider's jobs are dealt with: out of LossPendingIndex (unless it heartbeated since,
        which takes it out anyway)."""
        self._if_still(provider_id, ProviderStatus.OFFLINE, seen_heartbeat, "REMOVE loss_bucket", {})

    def _silent_since(self, index: str, key: tuple[str, str], cutoff: datetime) -> list[tuple[str, str]]:
        args: dict[str, Any] = {
            "TableName": self.providers_table,
            "IndexName": index,
            "KeyConditionExpression": "#k = :k AND last_heartbeat < :cutoff",
            "ExpressionAttributeNames": {"#k": key[0]},
            "ExpressionAttributeValues": {":k": {"S": key[1]}, ":cutoff": ddb.to_value(cutoff)},
        }
        found: list[tuple[str, str]] = []
        with ddb.translated_errors():
            for page in ddb.client().get_paginator("query").paginate(**args):
                found += [(i["provider_id"]["S"], i["last_heartbeat"]["S"]) for i in page.get("Items", [])]
        return found

    def mark_offline(self, provider_id: str, seen_heartbeat: str, now: datetime) -> bool:
        """Available -> Offline, unless a heartbeat arrived since `seen_heartbeat` (then False)."""
        return self._if_still(
            provider_id,
            ProviderStatus.AVAILABLE,
            seen_heartbeat,
            "SET #s = :offline, offline_since = :now, loss_bucket = :pending",
            {
                ":offline": {"S": ProviderStatus.OFFLINE.value},
                ":now": ddb.to_value(now),
                ":pending": {"S": LOSS_BUCKET},
            },
        )

    def _if_still(
        self, provider_id: str, status: ProviderStatus, seen_heartbeat: str, update: str, values: dict[str, Any]
    ) -> bool:
        """Apply `update` if the provider is still in `status` with the heartbeat the caller saw (a
        heartbeat landing meanwhile wins); False when it is not."""
        try:
            with ddb.translated_errors():
                ddb.client().update_item(
                    TableName=self.providers_table,
                    Key={"provider_id": {"S": provider_id}},
                    UpdateExpression=update,
                    ConditionExpression="#s = :was AND last_heartbeat = :seen",
                    ExpressionAttributeNames={"#s": "status"},
                    ExpressionAttributeValues={":was": {"S": status.value}, ":seen": {"S": seen_heartbeat}} | values,
                )
        except ConditionFailed:
            return False
        return True

    def create(self, record: ProviderRecord) -> None:
        """Write a new provider and its listings together; ConditionFailed if the id exists."""
        item = ddb.to_item(record.model_dump()) | {VERSION: {"N": "0"}}
        actions: list[Any] = [
            {
                "Put": {
                    "TableName": self.providers_table,
                    "Item": item,
                    "ConditionExpression": "attribute_not_exists(provider_id)",
                }
            }
        ]
        actions += [self._put_listing(record, model) for model in record.gpu_total]
        self._transact(actions)

    def update_registration(self, record: ProviderRecord, version: int, dropped_models: Iterable[str]) -> None:
        """Re-registration: new spec, price and counters, if nothing was allocated since `version`."""
        fields = {
            "spec": record.spec,
            "region": record.region,
            "runtime": record.runtime,
            "gpu_price_per_hour": record.gpu_price_per_hour,
            "gpu_total": record.gpu_total,
            "gpu_available": record.gpu_available,
            "gpu_in_use": record.gpu_in_use,
            "cpu_total": record.cpu_total,
            "cpu_available": record.cpu_available,
            "mem_total_mb": record.mem_total_mb,
            "mem_available_mb": record.mem_available_mb,
        }
        names = {f"#f{i}": name for i, name in enumerate(fields)}
        values = {f":f{i}": ddb.to_value(value) for i, value in enumerate(fields.values())}
        sets = ", ".join(f"#f{i} = :f{i}" for i in range(len(fields)))
        actions: list[Any] = [
            {
                "Update": {
                    "TableName": self.providers_table,
                    "Key": {"provider_id": {"S": record.provider_id}},
                    "UpdateExpression": f"SET {sets}, #v = #v + :one",
                    "ConditionExpression": "#v = :version AND wallet_addr = :wallet",
                    "ExpressionAttributeNames": names | {"#v": VERSION},
                    "ExpressionAttributeValues": values
                    | {
                        ":one": {"N": "1"},
                        ":version": {"N": str(version)},
                        ":wallet": {"S": record.wallet_addr},
                    },
                }
            }
        ]
        actions += [self._put_listing(record, model) for model in record.gpu_total]
        actions += [
            {"Delete": {"TableName": self.gpus_table, "Key": self._listing_key(record.provider_id, model)}}
            for model in dropped_models
        ]
        self._transact(actions)

    def record_heartbeat(self, provider_id: str, wallet: str, now: datetime, mining: MiningReport) -> ProviderRecord:
        """Stamp the heartbeat; a Joined or Offline provider becomes Available. ConditionFailed when the
        provider is missing or another wallet's."""
        with ddb.translated_errors():
            answer = ddb.client().update_item(
                TableName=self.providers_table,
                Key={"provider_id": {"S": provider_id}},
                # A provider that answers is not lost: out of LossPendingIndex in the same write (a no-op
                # when it was not in it), before its sort key moves there.
                UpdateExpression="SET last_heartbeat = :now, mining = :mining REMOVE loss_bucket",
                ConditionExpression="attribute_exists(provider_id) AND wallet_addr = :wallet",
                ExpressionAttributeValues={
                    ":now": ddb.to_value(now),
                    ":mining": ddb.to_value(mining),
                    ":wallet": {"S": wallet},
                },
                ReturnValues="ALL_NEW",
            )
        record = _record(answer["Attributes"])
        if record.status in (ProviderStatus.JOINED, ProviderStatus.OFFLINE):
            record = self._mark_available(provider_id, record.status)
        return record

    def _mark_available(self, provider_id: str, current: ProviderStatus) -> ProviderRecord:
        # Conditioned on the status we saw, so a concurrent change is never overwritten.
        try:
            with ddb.translated_errors():
                answer = ddb.client().update_item(
                    TableName=self.providers_table,
                    Key={"provider_id": {"S": provider_id}},
                    UpdateExpression="SET #s = :available, joined_at = if_not_exists(joined_at, last_heartbeat)",
                    ConditionExpression="#s = :current",
                    ExpressionAttributeNames={"#s": "status"},
                    ExpressionAttributeValues={
                        ":available": {"S": ProviderStatus.AVAILABLE.value},
                        ":current": {"S": current.value},
                    },
                    ReturnValues="ALL_NEW",
                )
        except ConditionFailed:
            found = self.get(provider_id)
            assert found is not None  # providers are never deleted
            return found
        return _record(answer["Attributes"])

    # ------------------------------------------------------------------ helpers
    def _listing_key(self, provider_id: str, model: str) -> dict[str, Any]:
        return {"provider_id": {"S": provider_id}, "gpu_model": {"S": model}}

    def _put_listing(self, record: ProviderRecord, model: str) -> dict[str, Any]:
        item = self._listing_key(record.provider_id, model) | {
            "gpu_price_per_hour": ddb.to_value(record.gpu_price_per_hour),
            "region": {"S": record.region},
        }
        return {"Put": {"TableName": self.gpus_table, "Item": item}}

    @staticmethod
    def _transact(actions: list[Any]) -> None:
        with ddb.translated_errors():
            ddb.client().transact_write_items(TransactItems=actions)
