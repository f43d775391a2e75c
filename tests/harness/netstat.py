"""Counting a process's TCP connections from /proc, to measure what an environment holds open
(the client side) and what a server holds (the server side)."""

import os

_ESTABLISHED = "01"


def _socket_inodes(pid: int) -> set[str]:
    inodes = set()
    fd_dir = f"/proc/{pid}/fd"
    for fd in os.listdir(fd_dir):
        try:
            target = os.readlink(os.path.join(fd_dir, fd))
        except OSError:
            continue
        if target.startswith("socket:["):
            inodes.add(target[8:-1])
    return inodes


def _established(pid: int) -> list[tuple[int, int]]:
    """(local port, remote port) of each ESTABLISHED TCP connection process `pid` holds."""
    inodes = _socket_inodes(pid)
    found = []
    for table in ("tcp", "tcp6"):
        try:
            with open(f"/proc/{pid}/net/{table}") as f:
                rows = f.read().splitlines()[1:]
        except OSError:
            continue
        for row in rows:
            fields = row.split()
            local, remote, state, inode = fields[1], fields[2], fields[3], fields[9]
            if state == _ESTABLISHED and inode in inodes:
                found.append((int(local.rsplit(":", 1)[1], 16), int(remote.rsplit(":", 1)[1], 16)))
    return found


def established_to(pid: int, remote_port: int) -> int:
    """How many ESTABLISHED TCP connections process `pid` has to any address on `remote_port`."""
    return len(local_ports_to(pid, remote_port))


def local_ports_to(pid: int, remote_port: int) -> list[int]:
    """The local ports of the ESTABLISHED TCP connections process `pid` has to `remote_port`."""
    return sorted(local for local, remote in _established(pid) if remote == remote_port)


def established_on(pid: int, local_port: int) -> int:
    """How many ESTABLISHED TCP connections process `pid` holds on its own `local_port`: for a
    server, the clients connected to it, counted from the server's side."""
    return sum(1 for local, _ in _established(pid) if local == local_port)
