"""1. Sizes: the binary, the layer zip, and the newest glibc symbol version the binary needs."""

import re
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

from harness import REPO_ROOT
from harness.layer import layer_zip

from .context import BENCH_OUT, Context
from .report import Goal, Section

LAYER_ZIP_GOAL_MB = 3.5
#: Amazon Linux 2, the oldest x86_64 Lambda runtime base still in service.
GLIBC_GOAL = (2, 26)


def glibc_versions(binary: Path) -> list[tuple[int, ...]]:
    """Every GLIBC_x.y version the binary's dynamic symbols refer to (objdump -T)."""
    out = subprocess.run(["objdump", "-T", str(binary)], capture_output=True, text=True, check=True).stdout
    return sorted({tuple(int(p) for p in v.split(".")) for v in re.findall(r"GLIBC_([0-9][0-9.]*[0-9])", out)})


def _shown(path: Path) -> str:
    return str(path.relative_to(REPO_ROOT)) if path.is_relative_to(REPO_ROOT) else str(path)


def run(ctx: Context, section: Section) -> None:
    size = ctx.binary.stat().st_size
    described = subprocess.run(["file", "-b", str(ctx.binary)], capture_output=True, text=True).stdout.strip() \
        if shutil.which("file") else ""
    section.add("binary", size / 1e6, "MB", note=f"{size:,} bytes; {'stripped' if ', stripped' in described else 'NOT stripped'}")
    section.details["binary"] = {"path": str(ctx.binary), "bytes": size, "file": described}

    shipped = layer_zip()
    if shipped.is_file():
        zip_path, note = shipped, _shown(shipped)
        with zipfile.ZipFile(shipped) as archive:
            if archive.getinfo("extensions/mongo-sidecar").file_size != size:
                note += f"; its binary is NOT the one measured here ({_shown(ctx.binary)})"
    else:
        # No built layer: package this binary the way `make layer` does, so there is a figure.
        zip_path = BENCH_OUT / "assembled-layer.zip"
        subprocess.run([sys.executable, str(REPO_ROOT / "layer" / "package.py"), "--binary", str(ctx.binary),
                        "--out", str(zip_path)], check=True, stdout=subprocess.DEVNULL)
        note = f"no {_shown(shipped)}: assembled from {_shown(ctx.binary)}"
    zip_bytes = zip_path.stat().st_size
    section.add("layer zip", zip_bytes / 1e6, "MB", Goal(LAYER_ZIP_GOAL_MB), note=note)
    section.details["layer_zip"] = {"path": str(zip_path), "bytes": zip_bytes}

    if not shutil.which("objdump"):
        section.error("glibc", "objdump not found (binutils)")
        return
    versions = glibc_versions(ctx.binary)
    newest = versions[-1] if versions else None
    text = ".".join(map(str, newest)) if newest else "none"
    met = None if newest is None else newest <= GLIBC_GOAL
    section.add("newest GLIBC symbol version needed", text, goal=f"≤ {'.'.join(map(str, GLIBC_GOAL))}",
                goal_met=met, note="Amazon Linux 2 has 2.26, Amazon Linux 2023 2.34")
    section.details["glibc_versions"] = [".".join(map(str, v)) for v in versions]
