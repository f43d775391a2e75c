"""The MongoDB Node.js driver that handlers bundle today, for comparisons with the sidecar: the
version pinned in tests/bench/package.json and package-lock.json, installed with `npm ci` into
.tools/bench/node_modules the first time, and again only when the pins change."""

import hashlib
import shutil
import subprocess
from pathlib import Path

from . import REPO_ROOT, TOOLS_DIR, HarnessError

PINS_DIR = REPO_ROOT / "tests" / "bench"
INSTALL_DIR = TOOLS_DIR / "bench"


def node_modules() -> Path:
    """The node_modules directory holding the pinned `mongodb` package and its dependencies."""
    lock = PINS_DIR / "package-lock.json"
    stamp = INSTALL_DIR / "node_modules" / ".bench-stamp"
    digest = hashlib.sha256(lock.read_bytes() + (PINS_DIR / "package.json").read_bytes()).hexdigest()
    if not (stamp.is_file() and stamp.read_text() == digest):
        npm = shutil.which("npm")
        if not npm:
            raise HarnessError("npm not found: it installs the MongoDB Node.js driver to compare against")
        INSTALL_DIR.mkdir(parents=True, exist_ok=True)
        shutil.copy(PINS_DIR / "package.json", INSTALL_DIR / "package.json")
        shutil.copy(lock, INSTALL_DIR / "package-lock.json")
        print(f"installing the MongoDB Node.js driver into {INSTALL_DIR}/node_modules (npm ci)", flush=True)
        subprocess.run([npm, "ci", "--no-audit", "--no-fund", "--loglevel=error"], cwd=INSTALL_DIR, check=True,
                       stdout=subprocess.DEVNULL)
        stamp.write_text(digest)
    return INSTALL_DIR / "node_modules"


def node_driver() -> Path:
    """The pinned `mongodb` package's directory."""
    return node_modules() / "mongodb"
