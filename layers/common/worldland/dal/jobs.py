"""Job items, and the transactions that hold and give back a provider's capacity with them."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from worldland.dal import dynamodb as ddb
from worldland.models.jobs import JobRecord, JobStatus

OWNER_INDEX = "OwnerIndex"
PROVIDER_INDEX = "ProviderIndex"
EXPIRY_INDEX = "ExpiryIndex"
# Jobs that hold resources carry this attribute and so appear in the sparse ExpiryIndex.
EXPIRY_BUCKET = "active"
START_DEADLINE_INDEX = "StartDeadlineIndex"
# Jobs with a start deadline that are not Running yet carry this one (sparse StartDeadlineIndex).
START_BUCKET = "starting"
HOLDING = [JobStatus.AWAITING_PAYMENT, JobStatus.PENDING, JobStatus.STARTING, JobStatus.RUNNING]
NOT_STARTED = [JobStatus.AWAITING_PAYMENT, JobStatus.PENDING, JobStatus.STARTING]


def _job(item: dict[str, Any]) -> JobRecord:
    return JobRecord.model_validate(ddb.from_item(item))


class JobRepository:
    # Item order inside the allocation transaction; cancellation reasons come back in this order.
    PROVIDER_ITEM, JOB_ITEM, IDEMPOTENCY_ITEM = 0, 1, 2

    def __init__(self, jobs_table: str, providers_table: str, idempotency_table: str) -> None:
        self.jobs_table = jobs_table
        self.providers_table = providers_table
        self.idempotency_table = idempotency_table

    def get(self, job_id: str) -> JobRecord | None:
        with ddb.translated_errors():
            item = (
                ddb.client()
                .get_item(TableName=self.jobs_table, Key={"job_id": {"S": job_id}}, ConsistentRead=True)
                .get("Item")
            )
        return _job(item) if item else None

    def by_owner(self, owner: str, limit: int, token: str | None) -> tuple[list[JobRecord], str | None]:
        """The owner's jobs, newest first."""
        args: dict[str, Any] = {
            "TableName": self.jobs_table,
            "IndexName": OWNER_INDEX,
            "KeyConditionExpression": "#o = :o",
            "ExpressionAttributeNames": {"#o": "owner"},
            "ExpressionAttributeValues": {":o": {"S": owner}},
            "ScanIndexForward": False,
            "Limit": limit,
        }
        if start := ddb.decode_page_token(token):
            args["ExclusiveStartKey"] = start
        with ddb.translated_errors():
            answer = ddb.client().query(**args)
        return [_job(i) for i in answer.get("Items", [])], ddb.encode_page_token(answer.get("LastEvaluatedKey"))

    def idempotent_job_id(self, key: str) -> tuple[str, str] | None:
        """(job_id, request_hash) recorded under an idempotency key, if any."""
        with ddb.translated_errors():
            item = (
                ddb.client()
                .get_item(TableName=self.idempotency_table, Key={"idempotency_key": {"S": key}}, ConsistentRead=True)
                .get("Item")
            )
        return (item["job_id"]["S"], item["request_hash"]["S"]) if item else None

    def allocate(self, job: JobRecord, idempotency: tuple[str, int] | None = None) -> None:
        """Hold the job's resources on its provider and write the job, all or nothing.

        The provider update is conditioned on the provider being Available and having enough of each
        resource left, so concurrent allocations can never take more than there is. With an
        idempotency (key, ttl), a record of the key is written in the same transaction: a second
        request with that key fails its condition instead of allocating again.
        Raises TransactionCancelled (reasons in PROVIDER_ITEM / JOB_ITEM / IDEMPOTENCY_ITEM order).
        """
        memory_mb = job.memory_gb * 1024
        actions: list[Any] = [
            {
                "Update": {
                    "TableName": self.providers_table,
                    "Key": {"provider_id": {"S": job.provider_id}},
                    "UpdateExpression": (
                        "SET gpu_available.#m = gpu_available.#m - :g, gpu_in_use.#m = gpu_in_use.#m + :g, "
                        "cpu_available = cpu_available - :c, cpu_in_use = cpu_in_use + :c, "
                        "mem_available_mb = mem_available_mb - :mem, mem_in_use_mb = mem_in_use_mb + :mem, "
                        "#v = #v + :one"
                    ),
                    "ConditionExpression": (
                        "#s = :available AND gpu_available.#m >= :g AND cpu_available >= :c "
                        "AND mem_available_mb >= :mem"
                    ),
                    "ExpressionAttributeNames": {"#m": job.gpu_model, "#s": "status", "#v": "version"},
                    "ExpressionAttributeValues": {
                        ":g": {"N": str(job.gpu_count)},
                        ":c": {"N": str(job.cpu_cores)},
                        ":mem": {"N": str(memory_mb)},
                        ":one": {"N": "1"},
                        ":available": {"S": "Available"},
                    },
                }
            },
            {
                "Put": {
                    "TableName": self.jobs_table,
                    "Item": ddb.to_item(job.model_dump() | _index_buckets(job)),
                    "ConditionExpression": "attribute_not_exists(job_id)",
                }
            },
        ]
        if idempotency:
            key, expires_epoch = idempotency
            actions.append(
                {
                    "Put": {
                        "TableName": self.idempotency_table,
                        "Item": ddb.to_item(
                            {
                                "idempotency_key": key,
                                "job_id": job.job_id,
                                "request_hash": job.request_hash or "",
                                "ttl": expires_epoch,
                            }
                        ),
                        "ConditionExpression": "attribute_not_exists(idempotency_key)",
                    }
                }
            )
        with ddb.translated_errors():
            ddb.client().transact_write_items(TransactItems=actions)

    def end(
        self, job: JobRecord, status: JobStatus, fields: dict[str, Any], from_statuses: list[JobStatus] = HOLDING
    ) -> None:
        """Move a job that holds resources to `status` and give its resources back, exactly once.

        Conditioned on the job not being released yet (and being in one of `from_statuses`): of
        concurrent enders (delete, expiry, failure, a duplicate delivery) exactly one succeeds; the
        others get TransactionCancelled.
        """
        memory_mb = job.memory_gb * 1024
        sets = {"status": status, "released": True} | fields
        names = {f"#f{i}": name for i, name in enumerate(sets)}
        values = {f":f{i}": ddb.to_value(value) for i, value in enumerate(sets.values())}
        holding = {f":h{i}": {"S": s.value} for i, s in enumerate(from_statuses)}
        actions: list[Any] = [
            {
                "Update": {
                    "TableName": self.jobs_table,
                    "Key": {"job_id": {"S": job.job_id}},
                    "UpdateExpression": "SET "
                    + ", ".join(f"#f{i} = :f{i}" for i in range(len(sets)))
                    + " REMOVE expiry_bucket, start_bucket",
                    "ConditionExpression": (
                        f"attribute_exists(job_id) AND released = :no AND #st IN ({', '.join(holding)})"
                    ),
                    "ExpressionAttributeNames": names | {"#st": "status"},
                    "ExpressionAttributeValues": values | holding | {":no": {"BOOL": False}},
                }
            },
            {
                "Update": {
                    "TableName": self.providers_table,
                    "Key": {"provider_id": {"S": job.provider_id}},
                    "UpdateExpression": (
                        "SET gpu_available.#m = gpu_available.#m + :g, gpu_in_use.#m = gpu_in_use.#m - :g, "
                        "cpu_available = cpu_available + :c, cpu_in_use = cpu_in_use - :c, "
                        "mem_available_mb = mem_available_mb + :mem, mem_in_use_mb = mem_in_use_mb - :mem, "
                        "#v = #v + :one"
                    ),
                    "ConditionExpression": "attribute_exists(provider_id)",
                    "ExpressionAttributeNames": {"#m": job.gpu_model, "#v": "version"},
                    "ExpressionAttributeValues": {
                        ":g": {"N": str(job.gpu_count)},
                        ":c": {"N": str(job.cpu_cores)},
                        ":mem": {"N": str(memory_mb)},
                        ":one": {"N": "1"},
                    },
                }
            },
        ]
        with ddb.translated_errors():
            ddb.client().transact_write_items(TransactItems=actions)

    def transition(
        self, job_id: str, from_statuses: list[JobStatus], fields: dict[str, Any], remove: tuple[str, ...] = ()
    ) -> JobRecord:
        """Set fields on a job that is in one of `from_statuses` (None removes); ConditionFailed otherwise."""
        remove = (*remove, *(name for name, value in fields.items() if value is None))
        if fields.get("status") not in (None, *NOT_STARTED):
            remove = (*remove, "start_bucket")  # started (or ended): out of the start-deadline sweep
        fields = {name: value for name, value in fields.items() if value is not None}
        names = {f"#f{i}": name for i, name in enumerate(fields)}
        values = {f":f{i}": ddb.to_value(value) for i, value in enumerate(fields.values())}
        allowed = {f":s{i}": {"S": s.value} for i, s in enumerate(from_statuses)}
        expression = "SET " + ", ".join(f"#f{i} = :f{i}" for i in range(len(fields)))
        if remove:
            expression += " REMOVE " + ", ".join(remove)
        with ddb.translated_errors():
            answer = ddb.client().update_item(
                TableName=self.jobs_table,
                Key={"job_id": {"S": job_id}},
                UpdateExpression=expression,
                ConditionExpression=f"attribute_exists(job_id) AND #st IN ({', '.join(allowed)})",
                ExpressionAttributeNames=names | {"#st": "status"},
                ExpressionAttributeValues=values | allowed,
                ReturnValues="ALL_NEW",
            )
        return _job(answer["Attributes"])

    def expiring(self, now: datetime, limit: int = 1000) -> list[str]:
        """Ids of jobs that hold resources and whose expires_at has passed, oldest first."""
        return self._due(EXPIRY_INDEX, ("expiry_bucket", EXPIRY_BUCKET), "expires_at", now, limit)

    def start_overdue(self, now: datetime, limit: int = 1000) -> list[str]:
        """Ids of jobs not Running yet whose start deadline has passed, oldest first."""
        return self._due(START_DEADLINE_INDEX, ("start_bucket", START_BUCKET), "start_by", now, limit)

    def _due(self, index: str, bucket: tuple[str, str], deadline: str, now: datetime, limit: int) -> list[str]:
        """A sparse deadline index: the ids in `bucket` whose `deadline` is at or before `now`."""
        args: dict[str, Any] = {
            "TableName": self.jobs_table,
            "IndexName": index,
            "KeyConditionExpression": "#b = :b AND #d <= :now",
            "ExpressionAttributeNames": {"#b": bucket[0], "#d": deadline},
            "ExpressionAttributeValues": {":b": {"S": bucket[1]}, ":now": ddb.to_value(now)},
            "Limit": limit,
        }
        with ddb.translated_errors():
            answer = ddb.client().query(**args)
        return [item["job_id"]["S"] for item in answer.get("Items", [])]

    def holding_on_provider(self, provider_id: str) -> list[JobRecord]:
        """The provider's jobs that still hold resources."""
        holding = {f":h{i}": {"S": s.value} for i, s in enumerate(HOLDING)}
        args: dict[str, Any] = {
            "TableName": self.jobs_table,
            "IndexName": PROVIDER_INDEX,
            "KeyConditionExpression": "provider_id = :p",
            "FilterExpression": f"#st IN ({', '.join(holding)})",
            "ExpressionAttributeNames": {"#st": "status"},
            "ExpressionAttributeValues": {":p": {"S": provider_id}} | holding,
        }
        jobs: list[JobRecord] = []
        with ddb.translated_errors():
            for page in ddb.client().get_paginator("query").paginate(**args):
                jobs += [_job(item) for item in page.get("Items", [])]
        return jobs


def _index_buckets(job: JobRecord) -> dict[str, str]:
    """The sparse index keys a new job carries: expiry always, the start deadline when it has one."""
    buckets = {"expiry_bucket": EXPIRY_BUCKET}
    if job.start_by is not None:
        buckets["start_bucket"] = START_BUCKET
    return buckets
