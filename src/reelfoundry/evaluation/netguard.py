"""A process-wide guard that refuses network access and new programs: the sandbox of onboarding's generations.

It is a ``sys.addaudithook`` hook, installed in the child process that runs a model under test (never in a
server: an audit hook cannot be removed). It refuses, by raising :class:`NetworkRefused` inside the call:

- ``socket.connect`` / ``socket.sendto`` / ``socket.sendmsg`` on an internet socket (AF_INET, AF_INET6), to
  any address, loopback included: a generation has no reason to reach even the local machine over TCP/UDP,
  and a local proxy is one hop from the internet; ``socket.bind`` to anything but a loopback address;
- name look-ups (``socket.getaddrinfo``, ``socket.gethostbyname``, ``socket.gethostbyaddr``): a DNS query
  carries data out on its own;
- starting programs (``subprocess.Popen``, ``os.system``, ``os.exec``, ``os.posix_spawn``, ``os.spawn``):
  a program started from the model would run without the hook; except the tools ``ctypes.util.find_library``
  runs to find shared libraries (ldconfig, gcc, cc, ld, objdump), which libraries call at import.

Unix sockets stay allowed (local IPC: multiprocessing, loggers). Every refused attempt is also recorded in
:data:`ATTEMPTS`, so a model that catches the exception and carries on still fails the check.

Limits (why onboarding says "no connection through Python"): code that calls the C library directly (ctypes,
a compiled extension opening its own sockets) bypasses audit hooks. A network namespace (``unshare -n``, a
container without a network) is the stronger guard for models you do not trust at all.
"""

from __future__ import annotations

import ipaddress
import os
import socket
import sys
import threading
from typing import Any

#: Refused attempts, as one-line descriptions, in the order they happened.
ATTEMPTS: list[str] = []
_LOCK = threading.Lock()
_INSTALLED = False
_INET = (socket.AF_INET, socket.AF_INET6)
_SOCKET_EVENTS = frozenset({"socket.connect", "socket.sendto", "socket.sendmsg", "socket.bind"})
_LOOKUP_EVENTS = frozenset({"socket.getaddrinfo", "socket.gethostbyname", "socket.gethostbyaddr"})
_PROGRAM_EVENTS = frozenset({"subprocess.Popen", "os.system", "os.exec", "os.posix_spawn", "os.spawn"})
#: Programs ``ctypes.util.find_library`` runs to find a shared library (torch and others call it at import).
_LIBRARY_TOOLS = frozenset({"ldconfig", "gcc", "cc", "ld", "objdump"})


class NetworkRefused(PermissionError):
    """The guard refused a network operation or a new program."""


def _describe(event: str, args: tuple[Any, ...]) -> str | None:
    """What to refuse, described; None to allow."""
    if event in _SOCKET_EVENTS:
        sock = args[0] if args else None
        if getattr(sock, "family", None) not in _INET:
            return None
        address = args[1] if len(args) > 1 else None
        if event == "socket.bind" and _loopback(address):
            return None  # binding is not a connection (urllib3 binds ::1 at import to test for IPv6)
        return f"{event.removeprefix('socket.')} to {address!r}"
    if event in _LOOKUP_EVENTS:
        return f"{event.removeprefix('socket.')} of {args[0]!r}" if args else event
    if event in _PROGRAM_EVENTS:
        program = args[0] if args else None
        if isinstance(program, list | tuple):
            program = program[0] if program else None
        if isinstance(program, str | bytes | os.PathLike) and os.path.basename(os.fsdecode(program)) in _LIBRARY_TOOLS:
            return None
        return f"{event} of {str(program)[:200]!r}"
    return None


def _loopback(address: Any) -> bool:
    host = address[0] if isinstance(address, tuple) and address else None
    try:
        return isinstance(host, str) and ipaddress.ip_address(host.split("%")[0]).is_loopback
    except ValueError:
        return False


def _hook(event: str, args: tuple[Any, ...]) -> None:
    described = _describe(event, args)
    if described is None:
        return
    with _LOCK:
        ATTEMPTS.append(described[:300])
    raise NetworkRefused(f"refused by the onboarding network guard: {described[:300]}")


def install() -> None:
    """Install the guard in this process (once; it cannot be removed)."""
    global _INSTALLED
    if not _INSTALLED:
        sys.addaudithook(_hook)
        _INSTALLED = True


def attempts() -> list[str]:
    """A copy of the refused attempts so far."""
    with _LOCK:
        return list(ATTEMPTS)
