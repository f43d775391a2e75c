"""The layer as Lambda mounts it at /opt: extensions/mongo-sidecar plus the thin clients.

Tests use the built zip (`make layer`, dist/mongo-sidecar-layer-x86_64.zip), unpacked as Lambda
unpacks it, so what runs under the emulator is exactly what ships. With MONGO_SIDECAR_BIN set
(a debug build, say), the same layout is assembled from that binary and the client sources.
The arm64 zip (`make layer-arm64`) is layer_zip("arm64").
"""

import importlib.util
import os
import shutil
import stat
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

from . import REPO_ROOT, HarnessError

ARCHITECTURES = ("x86_64", "arm64")


def layer_zip(arch: str = "x86_64") -> Path:
    """The layer zip for `arch`: $MONGO_SIDECAR_LAYER_ZIP (x86_64) or $MONGO_SIDECAR_LAYER_ZIP_ARM64
    if set, else dist/mongo-sidecar-layer-ARCH.zip."""
    variable = "MONGO_SIDECAR_LAYER_ZIP" if arch == "x86_64" else f"MONGO_SIDECAR_LAYER_ZIP_{arch.upper()}"
    return Path(os.environ.get(variable) or REPO_ROOT / "dist" / f"mongo-sidecar-layer-{arch}.zip")


def python_versions() -> tuple[str, ...]:
    """The Python runtimes the layer ships bytecode for: PYTHON_VERSIONS of layer/package.py."""
    spec = importlib.util.spec_from_file_location("layer_package", REPO_ROOT / "layer" / "package.py")
    package = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(package)
    return package.PYTHON_VERSIONS


def unpack(zip_path: Path, into: Path) -> Path:
    """Unpacks a layer zip keeping each entry's Unix mode, as Lambda does."""
    with zipfile.ZipFile(zip_path) as archive:
        for info in archive.infolist():
            target = into / info.filename
            archive.extract(info, into)
            mode = (info.external_attr >> 16) & 0o777
            if mode and not info.is_dir():
                target.chmod(mode)
    return into


def layer_dir() -> Path:
    """A temporary directory laid out like the layer; the caller removes it when done."""
    into = Path(tempfile.mkdtemp(prefix="mongo-sidecar-layer-"))
    binary = os.environ.get("MONGO_SIDECAR_BIN")
    if binary:
        out = into / "assembled.zip"
        path = Path(binary) if Path(binary).is_absolute() else REPO_ROOT / binary
        subprocess.run([sys.executable, str(REPO_ROOT / "layer" / "package.py"), "--binary", str(path),
                        "--out", str(out)], check=True, stdout=subprocess.DEVNULL)
        unpack(out, into / "opt")
        out.unlink()
    else:
        zip_path = layer_zip()
        if not zip_path.is_file():
            shutil.rmtree(into)
            raise HarnessError(f"{zip_path} not found: run `make layer` (or set MONGO_SIDECAR_BIN)")
        unpack(zip_path, into / "opt")
    extension = into / "opt" / "extensions" / "mongo-sidecar"
    if not extension.stat().st_mode & stat.S_IXUSR:
        raise HarnessError(f"{extension} is not executable")
    return into / "opt"
