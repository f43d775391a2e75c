"""A real MongoDB-compatible server for tests: FerretDB with its embedded SQLite backend.

    with FerretDB() as db:
        MongoClient(db.uri)...

Every server listens twice: plain TCP (`uri`) and TLS (`tls_uri`, with `tls=true&tlsCAFile=` a
throwaway CA made for it, `harness.tls`), so tests can run the connection path both ways.

Also a command-line wrapper that runs a command against a fresh server (used by the Makefile):

    python -m harness.ferretdb run -- cargo test --workspace

The command sees the server's URIs in MONGO_SIDECAR_TEST_URI and MONGO_SIDECAR_TEST_TLS_URI; the
wrapper exits with its code.
"""

import argparse
import atexit
import os
import selectors
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from pymongo import MongoClient

from . import HarnessError, tool
from .procs import die_with_parent, exit_on_sigterm, free_port, terminate
from .tls import TestCA

URI_ENV_VAR = "MONGO_SIDECAR_TEST_URI"
TLS_URI_ENV_VAR = "MONGO_SIDECAR_TEST_TLS_URI"


class FerretDB:
    """One FerretDB server on two free loopback ports (plain and TLS), with its own temporary data
    directory and its own test CA.

    `stop()` stops the process and keeps the data; `restart()` starts it again on the same port
    and data; `close()` (context-manager exit, or atexit) stops it and removes the data directory.
    The launcher also stops by itself when this process dies.
    """

    def __init__(self, start_timeout: float = 30.0, log_level: str = "warn", tls_hosts: tuple[str, ...] = ()):
        """tls_hosts: more names for the TLS certificate besides localhost and 127.0.0.1, such as
        the target of an SRV record that points at this server."""
        self.binary = tool("ferretdb", "FERRETDB_BIN")
        self.port = free_port()
        self.tls_port = free_port()
        self.uri = f"mongodb://127.0.0.1:{self.port}/"
        self.start_timeout = start_timeout
        self.log_level = log_level
        self._tmp = Path(tempfile.mkdtemp(prefix="mongo-sidecar-ferretdb-"))
        self.data_dir = self._tmp / "data"
        self.log_path = self._tmp / "ferretdb.log"
        self.ca = TestCA(self._tmp / "tls")
        self._tls_cert, self._tls_key = self.ca.server_files("localhost", "127.0.0.1", *tls_hosts)
        #: The same server over TLS, trusting the server's certificate through the test CA.
        self.tls_uri = f"mongodb://127.0.0.1:{self.tls_port}/?tls=true&tlsCAFile={self.ca.cert_path}"
        self._proc: subprocess.Popen | None = None
        atexit.register(self.close)

    def start(self) -> "FerretDB":
        if self._proc is not None and self._proc.poll() is None:
            raise HarnessError("FerretDB is already running")
        with open(self.log_path, "ab") as log:
            self._proc = subprocess.Popen(
                [self.binary, "-data", self.data_dir, "-listen", f"127.0.0.1:{self.port}",
                 "-listen-tls", f"127.0.0.1:{self.tls_port}", "-tls-cert", self._tls_cert,
                 "-tls-key", self._tls_key, "-log-level", self.log_level],
                stdout=subprocess.PIPE, stderr=log, stdin=subprocess.DEVNULL,
                preexec_fn=die_with_parent,
            )
        try:
            self._wait_ready()
        except BaseException:
            self.stop()
            raise
        return self

    def _wait_ready(self) -> None:
        """Read the launcher's `ready URI` line, then check the server answers `ping` on both listeners."""
        deadline = time.monotonic() + self.start_timeout
        with selectors.DefaultSelector() as sel:
            sel.register(self._proc.stdout, selectors.EVENT_READ)
            if not sel.select(timeout=self.start_timeout):
                raise HarnessError(f"FerretDB not ready after {self.start_timeout:.0f} s{self._log_tail()}")
        line = self._proc.stdout.readline().decode().strip()
        if line != f"ready {self.uri}":
            code = self._proc.poll()
            raise HarnessError(f"FerretDB did not start (exit code {code}, said {line!r}){self._log_tail()}")
        for uri in (self.uri, self.tls_uri):
            remaining_ms = max(1000, int((deadline - time.monotonic()) * 1000))
            with MongoClient(uri, directConnection=True, serverSelectionTimeoutMS=remaining_ms) as client:
                client.admin.command("ping")

    def _log_tail(self, lines: int = 20) -> str:
        text = self.log_path.read_text(errors="replace") if self.log_path.exists() else ""
        tail = "\n".join(text.splitlines()[-lines:])
        return f"\n--- {self.log_path} (last lines) ---\n{tail}" if tail else ""

    @property
    def pid(self) -> int:
        """The server's process id, to count its sockets in /proc."""
        if self._proc is None:
            raise HarnessError("FerretDB is not running")
        return self._proc.pid

    def stop(self, timeout: float = 5.0) -> None:
        """Stop the server (SIGTERM, SIGKILL after `timeout` s); the data stays for restart()."""
        if self._proc is not None:
            terminate(self._proc, timeout)
            self._proc.stdout.close()
            self._proc = None

    def restart(self) -> "FerretDB":
        """Stop and start again on the same port with the same data."""
        self.stop()
        return self.start()

    def close(self) -> None:
        """Stop the server and remove its data directory (idempotent)."""
        self.stop()
        shutil.rmtree(self._tmp, ignore_errors=True)
        atexit.unregister(self.close)

    def __enter__(self) -> "FerretDB":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.close()


def run_with_ferretdb(command: list[str]) -> int:
    """Start FerretDB, run `command` with its URIs in the environment, stop FerretDB."""
    exit_on_sigterm()
    with FerretDB() as db:
        print(f"ferretdb: {db.uri} (TLS: {db.tls_uri}) for: {' '.join(command)}", file=sys.stderr, flush=True)
        proc = subprocess.Popen(command, env={**os.environ, URI_ENV_VAR: db.uri, TLS_URI_ENV_VAR: db.tls_uri})
        try:
            return proc.wait()
        finally:
            terminate(proc, timeout=10)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m harness.ferretdb")
    sub = parser.add_subparsers(dest="cmd", required=True)
    run = sub.add_parser("run", help=f"run a command against a fresh FerretDB ({URI_ENV_VAR}, {TLS_URI_ENV_VAR})")
    run.add_argument("command", nargs=argparse.REMAINDER, help="-- COMMAND [ARGS...]")
    args = parser.parse_args(argv)
    command = args.command[1:] if args.command[:1] == ["--"] else args.command
    if not command:
        parser.error("run: a command is required")
    try:
        return run_with_ferretdb(command)
    except (HarnessError, FileNotFoundError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
