"""The bench's DynamoDB cost model (bench/dynamodb_cost.py) follows DynamoDB's documented rules."""

from __future__ import annotations

from bench.dynamodb_cost import Index, item_size, write_cost

KEYS = ("provider_id",)
BY_STATUS_HEARTBEAT = Index("StatusHeartbeatIndex", ("status", "last_heartbeat"), "KEYS_ONLY")
BY_STATUS_PRICE = Index("StatusPriceIndex", ("status", "price"), "ALL")
BY_STATUS_PRICE_SLIM = Index("StatusPriceSlim", ("status", "price"), "INCLUDE", ("region",))


def test_item_size_by_the_documented_rules() -> None:
    assert item_size({"name": {"S": "abc"}}) == 4 + 3
    assert item_size({"n": {"N": "123.450"}}) == 1 + 3 + 1  # 5 significant digits: 3 bytes, + 1
    assert item_size({"n": {"N": "-0.001"}}) == 1 + 1 + 1
    assert item_size({"ok": {"BOOL": True}}) == 2 + 1
    # Map: 3 bytes, plus 1 per element, plus each element's name and value
    assert item_size({"m": {"M": {"a": {"S": "xy"}, "b": {"N": "7"}}}}) == 1 + 3 + (1 + 1 + 2) + (1 + 1 + 2)
    assert item_size({"l": {"L": []}}) == 1 + 3


def item(status: str, beat: str, region: str = "eu") -> dict:
    return {
        "provider_id": {"S": "p"},
        "status": {"S": status},
        "last_heartbeat": {"S": beat},
        "price": {"N": "0.5"},
        "region": {"S": region},
    }


def test_a_changed_index_key_is_a_delete_and_a_put() -> None:
    cost = write_cost(item("Available", "t1"), item("Available", "t2"), KEYS, [BY_STATUS_HEARTBEAT])
    assert [(w.index, w.kind) for w in cost.index_writes] == [
        ("StatusHeartbeatIndex", "delete"),
        ("StatusHeartbeatIndex", "put"),
    ]
    assert (cost.table_units, cost.index_units, cost.total_units) == (1, 2, 3)


def test_a_changed_projected_attribute_is_one_put_and_an_unprojected_one_none() -> None:
    before, after = item("Available", "t1"), item("Available", "t2")
    assert [(w.index, w.kind) for w in write_cost(before, after, KEYS, [BY_STATUS_PRICE]).index_writes] == [
        ("StatusPriceIndex", "put")
    ]
    assert write_cost(before, after, KEYS, [BY_STATUS_PRICE_SLIM]).index_writes == []


def test_leaving_and_entering_a_sparse_index() -> None:
    without = {k: v for k, v in item("Available", "t1").items() if k != "last_heartbeat"}
    entering = write_cost(without, item("Available", "t1"), KEYS, [BY_STATUS_HEARTBEAT]).index_writes
    leaving = write_cost(item("Available", "t1"), without, KEYS, [BY_STATUS_HEARTBEAT]).index_writes
    assert [w.kind for w in entering] == ["put"]
    assert [w.kind for w in leaving] == ["delete"]


def test_the_larger_image_sets_the_table_units() -> None:
    small, big = item("Available", "t1"), item("Available", "t1", region="x" * 1500)
    assert write_cost(big, small, KEYS, []).table_units == 2
