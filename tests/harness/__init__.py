"""Test harness for mongo-sidecar: real components for tests, the demo and benchmarks.

- `harness.ferretdb.FerretDB`: a real MongoDB-compatible server (FerretDB, SQLite backend) on a
  free loopback port, with its own temporary data directory.
- `harness.lambda_env.ExecutionEnvironment`: one Lambda execution environment under the AWS Lambda
  Runtime Interface Emulator, with the extension installed as /opt/extensions/mongo-sidecar.

The tools come from `make tools` (into .tools/); the paths below can be overridden by env vars.
"""

import os
import shutil
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[2]
TOOLS_DIR = REPO_ROOT / ".tools"

#: The extension binary; later it will come from the layer zip instead of cargo's output.
DEFAULT_SIDECAR_BIN = REPO_ROOT / "target" / "release" / "mongo-sidecar"


class HarnessError(RuntimeError):
    """A component could not be found, started or stopped."""


def tool(name: str, env_var: str | None = None) -> Path:
    """Path of a test tool: $env_var if set, else .tools/bin/NAME, else NAME on PATH."""
    candidates = [os.environ.get(env_var)] if env_var and os.environ.get(env_var) else []
    candidates += [str(TOOLS_DIR / "bin" / name), shutil.which(name)]
    for path in filter(None, candidates):
        if os.access(path, os.X_OK):
            return Path(path)
    hint = f" or set {env_var}" if env_var else ""
    raise HarnessError(f"{name} not found in {TOOLS_DIR / 'bin'} or on PATH: run `make tools`{hint}")


def sidecar_binary() -> Path:
    """The extension binary: $MONGO_SIDECAR_BIN (relative to the repo root) or the cargo build."""
    path = Path(os.environ.get("MONGO_SIDECAR_BIN") or DEFAULT_SIDECAR_BIN)
    path = path if path.is_absolute() else REPO_ROOT / path
    if not os.access(path, os.X_OK):
        raise HarnessError(
            f"extension binary {path} not found or not executable: "
            "run `make build` or set MONGO_SIDECAR_BIN"
        )
    return path
