"""What a DynamoDB write costs, by DynamoDB's documented rules, from the item's images before and after.

moto answers ReturnConsumedCapacity with a constant, so the figures are derived instead:
- item size: attribute names + values (CapacityUnitCalculations: strings/binary by bytes, numbers
  1 byte per two significant digits + 1, booleans/null 1, lists/maps 3 + 1 per element + elements);
- table write units: ceil(larger of the before/after item size / 1 KB) (UpdateItem is charged on
  the whole item, not the attributes it touched);
- each global secondary index (from the template's definition): an entry is put when the item
  enters the index or a projected attribute changes, deleted when the item leaves it, and deleted
  + put when an index key changes; each costs ceil(entry size / 1 KB) write units.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

KB = 1024


def value_size(value: dict[str, Any]) -> int:
    """Size of one AttributeValue (`{"S": ...}`, `{"M": {...}}`, ...) without its name."""
    ((kind, data),) = value.items()
    if kind == "S":
        return len(data.encode())
    if kind == "N":
        return _number_size(data)
    if kind == "B":
        return len(data)
    if kind in ("BOOL", "NULL"):
        return 1
    if kind == "SS":
        return sum(len(s.encode()) for s in data)
    if kind == "NS":
        return sum(_number_size(n) for n in data)
    if kind == "BS":
        return sum(len(b) for b in data)
    if kind == "L":
        return 3 + sum(1 + value_size(v) for v in data)
    if kind == "M":
        return 3 + sum(1 + len(k.encode()) + value_size(v) for k, v in data.items())
    raise ValueError(f"unknown attribute type {kind}")


def _number_size(text: str) -> int:
    digits = str(Decimal(text).normalize()).lstrip("-").replace(".", "").split("E")[0].strip("0") or "0"
    return math.ceil(len(digits) / 2) + 1


def item_size(item: dict[str, dict[str, Any]]) -> int:
    return sum(len(name.encode()) + value_size(value) for name, value in item.items())


def units(size: int) -> int:
    return max(1, math.ceil(size / KB))


@dataclass(frozen=True)
class Index:
    name: str
    keys: tuple[str, ...]
    projection: str  # ALL | KEYS_ONLY | INCLUDE
    non_key: tuple[str, ...] = ()

    @classmethod
    def from_template(cls, spec: dict[str, Any]) -> Index:
        projection = spec["Projection"]
        return cls(
            name=spec["IndexName"],
            keys=tuple(k["AttributeName"] for k in spec["KeySchema"]),
            projection=projection["ProjectionType"],
            non_key=tuple(projection.get("NonKeyAttributes", ())),
        )

    def entry(self, item: dict[str, Any] | None, table_keys: tuple[str, ...]) -> dict[str, Any] | None:
        """The item's entry in this index (None when the item lacks an index key: sparse)."""
        if item is None or any(k not in item for k in self.keys):
            return None
        if self.projection == "ALL":
            return dict(item)
        kept = set(self.keys) | set(table_keys) | (set(self.non_key) if self.projection == "INCLUDE" else set())
        return {k: v for k, v in item.items() if k in kept}


@dataclass
class IndexWrite:
    index: str
    kind: str  # put | delete
    size: int

    @property
    def units(self) -> int:
        return units(self.size)


@dataclass
class WriteCost:
    item_size: int
    table_units: int
    index_writes: list[IndexWrite]

    @property
    def index_units(self) -> int:
        return sum(w.units for w in self.index_writes)

    @property
    def total_units(self) -> int:
        return self.table_units + self.index_units


def write_cost(
    before: dict[str, Any] | None, after: dict[str, Any] | None, table_keys: tuple[str, ...], indexes: list[Index]
) -> WriteCost:
    sizes = [item_size(i) for i in (before, after) if i is not None]
    writes: list[IndexWrite] = []
    for index in indexes:
        old, new = index.entry(before, table_keys), index.entry(after, table_keys)
        if old == new:
            continue  # the write changed nothing this index holds: no index write
        moved = old is not None and new is not None and any(old[k] != new[k] for k in index.keys)
        if old is not None and (new is None or moved):
            writes.append(IndexWrite(index.name, "delete", item_size(old)))
        if new is not None:
            writes.append(IndexWrite(index.name, "put", item_size(new)))
    return WriteCost(max(sizes, default=0), units(max(sizes, default=0)), writes)
