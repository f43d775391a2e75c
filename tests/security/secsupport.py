"""Helpers shared by the security suites: the token, the checks every error answer must pass,
raw-socket exchanges, sidecars for module-scoped fixtures, and tallies printed at the end."""

import json
import re
import socket
import time
from collections import Counter
from contextlib import contextmanager

from harness.sidecar import Sidecar

#: The token every sidecar of these suites checks, unless a test configures another.
TOKEN = "sec-suite-token-5b1e0c"

#: What tests record for the end of the run (title -> Counter of outcome -> count, or a line of
#: text); conftest prints them.
TALLIES: dict[str, Counter | str] = {}

# What an error message must never show: Rust type names, source paths, panics and stacks.
_RUST_TYPES = re.compile(
    r"\b(?:[iu](?:8|16|32|64|128|size)|f32|f64|String|Vec|Option|Result|Box|Arc|HashMap|"
    r"BTreeMap|RawDocumentBuf|RawBson|Bson|serde\w*|anyhow|thiserror)\b|::|&str\b"
)
_PATHS = re.compile(r"(?:/[\w.-]+){2,}\.rs\b|\bsrc/\w+\.rs\b|/(?:home|root|work|usr|tmp|opt)/|\.cargo/")
_STACK = re.compile(r"panicked|backtrace|RUST_BACKTRACE|thread '.*' |at [\w/.-]+\.rs:\d+")


def message_problems(message: str) -> list[str]:
    """What is wrong with an error message a client sees (empty when it is fine)."""
    found = []
    for name, pattern in (("a Rust type name", _RUST_TYPES), ("a file path", _PATHS), ("a stack", _STACK)):
        match = pattern.search(message)
        if match:
            found.append(f"{name} ({match.group(0)!r})")
    return found


def error_body_problems(status: int, headers: dict, raw: bytes) -> list[str]:
    """Checks an answer is a Data API error: a JSON object with string `error` and `error_code`,
    whose message passes `message_problems`."""
    if not raw:
        return ["empty body"]
    try:
        body = json.loads(raw)
    except ValueError:
        return [f"body is not JSON: {raw[:120]!r}"]
    if not isinstance(body, dict):
        return [f"body is not an object: {raw[:120]!r}"]
    problems = []
    if not isinstance(body.get("error"), str) or not body["error"]:
        problems.append("no string 'error'")
    if not isinstance(body.get("error_code"), str) or not body["error_code"]:
        problems.append("no string 'error_code'")
    if not headers.get("content-type", "").startswith("application/json"):
        problems.append(f"content-type {headers.get('content-type')!r}")
    problems += message_problems(str(body.get("error", "")))
    return problems


def record_tally(title: str, counts: Counter | str) -> None:
    TALLIES[title] = counts


@contextmanager
def running(uri, env=None, **kwargs):
    """A sidecar for a module-scoped fixture: started, yielded, stopped."""
    sc = Sidecar(uri, env or {}, **kwargs).start()
    try:
        yield sc
    finally:
        sc.stop()


def raw_exchange(port: int, chunks: list[bytes], *, half_close: bool = False, pause: float = 0.0,
                 wait: float = 5.0, path: str | None = None) -> tuple[float, bytes, str]:
    """Sends `chunks` on a fresh connection (TCP to `port`, or the Unix socket `path`), sleeping
    `pause` between them, optionally half-closes it, then reads until the server closes it or
    `wait` s pass.

    Returns (seconds until the server ended the exchange, bytes received, how it ended:
    "closed", "reset" or "hang")."""
    if path is not None:
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        sock.settimeout(wait)
        sock.connect(path)
    else:
        sock = socket.create_connection(("127.0.0.1", port), timeout=wait)
    started = time.monotonic()
    received = b""
    ended = "closed"
    try:
        for i, chunk in enumerate(chunks):
            if i and pause:
                time.sleep(pause)
            try:
                sock.sendall(chunk)
            except (BrokenPipeError, ConnectionResetError):
                break
        if half_close:
            try:
                sock.shutdown(socket.SHUT_WR)
            except OSError:
                pass
        deadline = started + wait
        while True:
            sock.settimeout(max(0.01, deadline - time.monotonic()))
            try:
                data = sock.recv(65536)
            except socket.timeout:
                ended = "hang"
                break
            except ConnectionResetError:
                ended = "reset"
                break
            if not data:
                break
            received += data
    finally:
        sock.close()
    return time.monotonic() - started, received, ended


def split_response(received: bytes) -> tuple[int | None, dict, bytes]:
    """(status, lowercase headers, body) of the first final (non-1xx) response in `received`."""
    while True:
        match = re.match(rb"HTTP/1\.[01] (\d{3})[^\r\n]*\r\n", received)
        if not match:
            return None, {}, b""
        head, _, rest = received.partition(b"\r\n\r\n")
        if match.group(1).startswith(b"1"):
            received = rest
            continue
        headers = {}
        for line in head.decode("latin-1").split("\r\n")[1:]:
            name, _, value = line.partition(":")
            headers[name.strip().lower()] = value.strip()
        length = headers.get("content-length")
        body = rest[: int(length)] if length is not None and length.isdigit() else rest
        return int(match.group(1)), headers, body
