"""Helpers shared by the deploy tests: where the AWS CLI and the template are, and running a
command from the repository root. Fixtures are in conftest.py."""

import subprocess
import sys
from pathlib import Path

from harness import REPO_ROOT

#: The AWS CLI of the tools venv (awscli v1 from PyPI, pinned in tests/requirements.txt).
AWS_CLI = Path(sys.executable).with_name("aws")
CFN_LINT = Path(sys.executable).with_name("cfn-lint")
SAMPLE_FUNCTION = REPO_ROOT / "sample-function"
TEMPLATE = SAMPLE_FUNCTION / "template.yaml"


def run(command: list, env: dict[str, str] | None = None, timeout: float = 120) -> subprocess.CompletedProcess:
    """Runs a command from the repository root, capturing its output as text."""
    return subprocess.run([str(c) for c in command], cwd=REPO_ROOT, env=env, capture_output=True, text=True,
                          timeout=timeout)


def make(arguments: list, env: dict[str, str], timeout: float = 180) -> subprocess.CompletedProcess:
    """Runs `make ARGUMENTS` in the repository root. The flags of a make this test run is itself
    under (make test) are dropped, so the inner make sees only the arguments given here."""
    env = {k: v for k, v in env.items() if k not in ("MAKEFLAGS", "MFLAGS", "MAKELEVEL")}
    return run(["make", "--no-print-directory", *arguments], env, timeout)
