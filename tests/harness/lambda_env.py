"""One Lambda execution environment, run locally under the AWS Lambda Runtime Interface Emulator.

    with ExecutionEnvironment("node", SAMPLE_FUNCTIONS / "node", layer_dir=layer_dir(),
                              env={"MONGODB_URI": uri}) as fn:
        status, body, ms = fn.invoke(http_event("GET", "/items"))   # harness.demo.http_event
        timing = fn.stop()   # SIGTERM -> SHUTDOWN to the extension; did it exit by itself?

Each environment has its own temporary /opt (the extension at /opt/extensions/mongo-sidecar plus
any layer content), its own emulator ports and its own sidecar port, so several can run at once.

Needs root: the emulator only starts extensions from the hard-coded /opt/extensions, so each
emulator runs in a private mount namespace (`unshare -m`) where the environment's own directory is
bind-mounted over /opt. The machine's /opt is never written to.

Like Lambda, the emulator initialises lazily: the runtime and the extension start at the first
invoke. An environment whose init failed stays broken; use a fresh one per scenario.
"""

import atexit
import http.client
import json
import os
import shutil
import signal
import subprocess
import tempfile
import time
from pathlib import Path
from typing import Any, NamedTuple

from . import REPO_ROOT, TOOLS_DIR, HarnessError, sidecar_binary, tool
from .procs import descendants, die_with_parent, free_port, pid_alive, process_name, terminate, wait_for_port

EXTENSION_NAME = "mongo-sidecar"
SAMPLE_FUNCTIONS = REPO_ROOT / "sample-function"
#: The Go and Java sample functions as Lambda gets them, built by `make sample-functions`.
BUILT_SAMPLE_FUNCTIONS = REPO_ROOT / "dist" / "sample-function"
#: What Lambda gives an extension between SHUTDOWN and SIGKILL (the emulator uses the same).
SHUTDOWN_DEADLINE_MS = 2000
_INVOKE_PATH = "/2015-03-31/functions/function/invocations"
#: runtime -> the handler setting, which the emulator passes on to the runtime as _HANDLER.
_RUNTIMES = {"python": "app.handler", "node": "index.handler", "go": "bootstrap",
             "java": "items.ItemsHandler::handleRequest"}
#: AWS_EXECUTION_ENV as Lambda sets it; the OS-only runtimes (provided.al2023, for Go) set none.
_EXECUTION_ENV = {"python": "AWS_Lambda_python3.11", "node": "AWS_Lambda_nodejs20.x", "java": "AWS_Lambda_java17"}
#: The JVM options Lambda's Java runtimes start with (C1 only, serial GC): a faster cold start.
_JAVA_OPTIONS = ["-XX:+TieredCompilation", "-XX:TieredStopAtLevel=1", "-XX:+UseSerialGC"]
_JAVA_RUNTIME_CLIENT = "com.amazonaws.services.lambda.runtime.api.client.AWSLambda"


def sample_function_dir(runtime: str) -> Path:
    """A sample function's code as Lambda gets it: the sources for Node.js and Python, the build
    of `make sample-functions` for Go (bootstrap) and Java (the jar)."""
    if runtime in ("go", "java"):
        built = BUILT_SAMPLE_FUNCTIONS / runtime
        if not built.is_dir():
            raise HarnessError(f"{built} not found: run `make sample-functions`")
        return built
    return SAMPLE_FUNCTIONS / runtime


class Invocation(NamedTuple):
    status: int
    body: Any  # the decoded JSON answer, or the raw text if it is not JSON
    elapsed_ms: float

    @property
    def function_error(self) -> str | None:
        """The runtime's error type if the handler failed (Lambda answers 200 with an error body)."""
        if isinstance(self.body, dict) and "errorType" in self.body:
            return self.body["errorType"]
        return None


class StopResult(NamedTuple):
    extension_pid: int | None  # None if the extension never started
    extension_exited_by_itself: bool  # gone before the deadline and not SIGKILLed by the emulator
    extension_exit_ms: float | None  # from SIGTERM to the emulator (it then sends SHUTDOWN) to exit
    extension_killed: bool  # the emulator logged that it SIGKILLed the extension
    emulator_exit_code: int
    sigterm_at: float  # time.perf_counter() when the emulator got SIGTERM


class ExecutionEnvironment:
    """One Lambda execution environment: emulator + runtime client + function + extension."""

    def __init__(
        self,
        runtime: str,
        function_dir: Path | str,
        *,
        env: dict[str, str] | None = None,
        binary: Path | str | None = None,
        with_extension: bool = True,
        layer_dir: Path | str | None = None,
        name: str = "sample-function",
        memory_mb: int = 512,
        timeout_s: int = 30,
        handler: str | None = None,
    ):
        """
        runtime: "python", "node", "go" or "java". function_dir: the handler's code (app.py,
            index.js, the Go function's bootstrap, the Java function's jar): see sample_function_dir.
        env: extra environment (MONGODB_URI etc.), over the defaults Lambda would set.
        binary: the extension (default: the layer's, else $MONGO_SIDECAR_BIN or
            target/release/mongo-sidecar).
        with_extension: False leaves /opt/extensions empty, to prove failures are detected.
        layer_dir: a directory copied into /opt, as a layer would be (extensions/...,
            nodejs/..., python/...); symbolic links in it are kept as links.
        handler: the function's handler setting (default: the sample function's, see _RUNTIMES).
        """
        if os.geteuid() != 0:
            raise HarnessError(
                "ExecutionEnvironment needs root: it bind-mounts its own /opt in a private "
                "mount namespace (unshare -m) because the emulator reads /opt/extensions only"
            )
        if runtime not in _RUNTIMES:
            raise HarnessError(f"runtime must be one of {sorted(_RUNTIMES)}, not {runtime!r}")
        self.runtime = runtime
        self.handler = handler or _RUNTIMES[runtime]
        self.function_dir = Path(function_dir).resolve()
        self.sidecar_port = free_port()
        self._invoke_port = free_port()
        self._runtime_api_port = free_port()
        self._tmp = Path(tempfile.mkdtemp(prefix=f"mongo-sidecar-env-{runtime}-"))
        self.opt_dir = self._tmp / "opt"
        self.log_path = self._tmp / "emulator.log"
        self._extension_pid: int | None = None
        self._proc: subprocess.Popen | None = None
        self._log: str | None = None  # the log's text, once the environment is closed
        atexit.register(self.close)

        (self.opt_dir / "extensions").mkdir(parents=True)
        if layer_dir is not None:
            shutil.copytree(layer_dir, self.opt_dir, dirs_exist_ok=True, symlinks=True)
        installed = self.opt_dir / "extensions" / EXTENSION_NAME
        if not with_extension:
            installed.unlink(missing_ok=True)
        elif binary is not None or not installed.exists():
            shutil.copyfile(binary or sidecar_binary(), installed)
            installed.chmod(0o755)
        self.env = self._lambda_env(name, memory_mb, timeout_s) | (env or {})

    def _lambda_env(self, name: str, memory_mb: int, timeout_s: int) -> dict[str, str]:
        """The variables Lambda sets for a function, plus the sidecar's port."""
        env = {
            "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
            "LANG": "C.UTF-8",
            "TZ": ":UTC",
            "LAMBDA_TASK_ROOT": str(self.function_dir),
            "AWS_LAMBDA_FUNCTION_NAME": name,
            "AWS_LAMBDA_FUNCTION_VERSION": "$LATEST",
            "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": str(memory_mb),
            "AWS_LAMBDA_FUNCTION_TIMEOUT": str(timeout_s),
            "AWS_REGION": "us-east-1",
            "AWS_DEFAULT_REGION": "us-east-1",
            # Dummy credentials, like a function role's: the sidecar's default auth token is
            # AWS_SESSION_TOKEN.
            "AWS_ACCESS_KEY_ID": "AKIAIOSFODNN7EXAMPLE",
            "AWS_SECRET_ACCESS_KEY": "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY",
            "AWS_SESSION_TOKEN": f"test-session-token-{self.sidecar_port}",
            "MONGO_SIDECAR_PORT": str(self.sidecar_port),
        }
        if self.runtime in _EXECUTION_ENV:
            env["AWS_EXECUTION_ENV"] = _EXECUTION_ENV[self.runtime]
        if self.runtime == "node":
            env["NODE_PATH"] = "/opt/nodejs/node20/node_modules:/opt/nodejs/node_modules:/var/runtime/node_modules"
        elif self.runtime == "python":
            env["PYTHONPATH"] = f"/opt/python:{self.function_dir}"
        return env

    def _runtime_command(self) -> list[str]:
        handler = self.handler  # the emulator takes its last argument as the handler setting
        if self.runtime == "python":
            # The harness venv has awslambdaric; Lambda's Python runtime has its own copy.
            python = TOOLS_DIR / "venv" / "bin" / "python"
            if not python.exists():
                raise HarnessError(f"{python} not found: run `make tools`")
            return [str(python), "-m", "awslambdaric", handler]
        if self.runtime == "go":
            return [str(self.function_dir / "bootstrap"), handler]  # the function is its own runtime
        if self.runtime == "java":
            # The jar on the class path as Lambda puts /var/task there; the runtime interface client
            # is the runtime's own.
            runtime_client = TOOLS_DIR / "java-runtime"
            if not runtime_client.is_dir():
                raise HarnessError(f"{runtime_client} not found: run `make tools`")
            java = shutil.which("java") or "java"
            class_path = f"{self.function_dir}/*:{runtime_client}/*"
            return [java, *_JAVA_OPTIONS, "-cp", class_path, _JAVA_RUNTIME_CLIENT, handler]
        ric = TOOLS_DIR / "node" / "node_modules" / "aws-lambda-ric" / "bin" / "index.mjs"
        if not ric.exists():
            raise HarnessError(f"{ric} not found: run `make tools`")
        node = shutil.which("node") or "node"
        return [node, str(ric), handler]

    def start(self, timeout: float = 10.0) -> "ExecutionEnvironment":
        """Start the emulator; the runtime and the extension start at the first invoke."""
        if shutil.which("unshare") is None:
            raise HarnessError("unshare (util-linux) not found")
        emulator = [
            str(tool("aws-lambda-rie", "AWS_LAMBDA_RIE_BIN")),
            "--runtime-interface-emulator-address", f"127.0.0.1:{self._invoke_port}",
            "--runtime-api-address", f"127.0.0.1:{self._runtime_api_port}",
            *self._runtime_command(),
        ]
        # $1 is the directory to mount over /opt; the rest is the emulator's command line.
        script = 'mount --bind "$1" /opt && shift && exec "$@"'
        with open(self.log_path, "ab") as log:
            self._proc = subprocess.Popen(
                ["unshare", "-m", "--propagation", "private", "sh", "-c", script, "sh",
                 str(self.opt_dir), *emulator],
                cwd=self.function_dir, env=self.env, stdin=subprocess.DEVNULL,
                stdout=log, stderr=subprocess.STDOUT, preexec_fn=die_with_parent,
            )
        try:
            wait_for_port(self._invoke_port, timeout, self._proc)
        except (TimeoutError, ChildProcessError) as e:
            self.close()
            raise HarnessError(f"emulator did not start: {e}\n{self.log_text()}") from None
        return self

    def invoke(self, event: Any, timeout: float = 30.0) -> Invocation:
        """Invoke the function with `event`; returns (status, body, elapsed_ms)."""
        if self._proc is None:
            raise HarnessError("environment not started")
        conn = http.client.HTTPConnection("127.0.0.1", self._invoke_port, timeout=timeout)
        try:
            started = time.perf_counter()
            conn.request("POST", _INVOKE_PATH, body=json.dumps(event),
                         headers={"Content-Type": "application/json"})
            response = conn.getresponse()
            raw = response.read()
            elapsed_ms = (time.perf_counter() - started) * 1000
        finally:
            conn.close()
        text = raw.decode(errors="replace")
        try:
            body = json.loads(text)
        except json.JSONDecodeError:
            body = text
        if self._extension_pid is None:
            self._extension_pid = self.extension_pid()
        return Invocation(response.status, body, elapsed_ms)

    def extension_pid(self) -> int | None:
        """Pid of the running mongo-sidecar process under this emulator, or None."""
        if self._proc is None:
            return None
        for pid in descendants(self._proc.pid):
            if process_name(pid) == EXTENSION_NAME:
                return pid
        return None

    def pids(self) -> list[int]:
        """Every living process of this environment: the emulator, the runtime, the extension."""
        if self._proc is None:
            return []
        return [self._proc.pid, *descendants(self._proc.pid)]

    def freeze(self) -> None:
        """Stop the function's and the extension's processes (SIGSTOP), as Lambda freezes an
        environment between invocations; thaw() before the next invoke."""
        self._signal_processes(signal.SIGSTOP)

    def thaw(self) -> None:
        self._signal_processes(signal.SIGCONT)

    def _signal_processes(self, signum: int) -> None:
        if self._proc is None:
            raise HarnessError("environment not started")
        for pid in descendants(self._proc.pid):
            try:
                os.kill(pid, signum)
            except ProcessLookupError:
                pass

    def stop(self, timeout: float = 5.0) -> StopResult:
        """SIGTERM the emulator (it sends SHUTDOWN to the extension), and time the extension's exit.

        The extension counts as having exited by itself if it was gone before the shutdown
        deadline and the emulator did not log that it SIGKILLed it.
        """
        if self._proc is None:
            raise HarnessError("environment not started")
        ext_pid = self.extension_pid() or self._extension_pid
        if ext_pid is not None and not pid_alive(ext_pid):
            raise HarnessError(f"extension (pid {ext_pid}) had already exited before SIGTERM\n{self.log_text()}")
        processes = descendants(self._proc.pid)
        started = time.perf_counter()
        self._proc.terminate()
        exit_ms = None
        if ext_pid is not None:
            deadline = started + timeout
            while pid_alive(ext_pid) and time.perf_counter() < deadline:
                time.sleep(0.001)
            if not pid_alive(ext_pid):
                exit_ms = (time.perf_counter() - started) * 1000
        code = terminate(self._proc, timeout)
        killed = f"Sending SIGKILL to extension-{EXTENSION_NAME}" in self.log_text()
        by_itself = exit_ms is not None and exit_ms < SHUTDOWN_DEADLINE_MS and not killed
        self._kill(processes)
        self.close()
        return StopResult(ext_pid, by_itself, exit_ms, killed, code, started)

    def close(self) -> None:
        """Stop everything this environment started and remove its files (idempotent).

        The log stays readable through log_text().
        """
        if self._proc is not None:
            processes = descendants(self._proc.pid)
            terminate(self._proc, timeout=5)
            self._kill(processes)  # e.g. an extension still draining after the emulator exited
            self._proc = None
        if self._log is None:
            self._log = self.log_text()
        shutil.rmtree(self._tmp, ignore_errors=True)
        atexit.unregister(self.close)

    @staticmethod
    def _kill(pids: list[int]) -> None:
        for pid in pids:
            if pid_alive(pid):
                try:
                    os.kill(pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass

    def log_text(self) -> str:
        """Everything the emulator, the runtime, the function and the extension printed."""
        if self._log is not None:
            return self._log
        try:
            return self.log_path.read_text(errors="replace")
        except FileNotFoundError:
            return ""

    def __enter__(self) -> "ExecutionEnvironment":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.close()
