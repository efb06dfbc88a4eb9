"""Is an SSH server answering on a port? (It sends its version banner first, RFC 4253 section 4.2.)"""

from __future__ import annotations

import socket


def ssh_answers(port: int, host: str = "127.0.0.1", timeout: float = 2.0) -> bool:
    """True once "SSH-…" comes back. A bare TCP connect is not enough: Docker's proxy accepts
    connections on a published port before anything listens inside the container."""
    try:
        with socket.create_connection((host, port), timeout=timeout) as connection:
            connection.settimeout(timeout)
            banner = connection.recv(64)
            # Identify ourselves before closing, so sshd logs a clean disconnect rather than a protocol error.
            connection.sendall(b"SSH-2.0-worldland-probe\r\n")
    except OSError:
        return False
    return banner.startswith(b"SSH-")
