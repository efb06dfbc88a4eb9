"""Port allocation: from the range, round-robin, never a port in use, freed ports reusable."""

from __future__ import annotations

import socket

import pytest
from worldland_node.ports import NoFreePort, PortAllocator, port_is_free


def test_ports_come_from_the_range_round_robin() -> None:
    ports = PortAllocator(30000, 30002, is_free=lambda _: True)
    assert [ports.allocate() for _ in range(3)] == [30000, 30001, 30002]
    ports.release(30001)
    # The freed port is handed out again only once the range comes round to it.
    assert ports.allocate() == 30001
    with pytest.raises(NoFreePort):
        ports.allocate()


def test_a_port_something_else_listens_on_is_skipped() -> None:
    ports = PortAllocator(30000, 30003, is_free=lambda p: p != 30000)
    assert ports.allocate() == 30001


def test_reserved_ports_are_not_handed_out() -> None:
    ports = PortAllocator(30000, 30001, is_free=lambda _: True)
    ports.reserve(30000)
    assert ports.allocate() == 30001
    assert ports.taken == {30000, 30001}


def test_port_is_free_sees_a_listener() -> None:
    with socket.socket() as listener:
        listener.bind(("0.0.0.0", 0))
        listener.listen()
        port = listener.getsockname()[1]
        assert not port_is_free(port)
    assert port_is_free(port)
