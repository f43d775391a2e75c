"""Builds the Lambda layer zip: the extension binary and the thin clients, laid out as Lambda
expects them under /opt.

    extensions/mongo-sidecar                  the extension (0755); Lambda starts it at init
    nodejs/node_modules/mongo-sidecar/        require('mongo-sidecar') in Node.js runtimes
    python/mongo_sidecar/                     import mongo_sidecar in Python runtimes

Usage: python3 layer/package.py --binary PATH --out dist/mongo-sidecar-layer-x86_64.zip

The zip is reproducible: entries are sorted and carry a fixed timestamp, so the same inputs
give the same bytes (and the same CodeSha256 when published).
"""

import argparse
import json
import py_compile
import stat
import sys
import tempfile
import zipfile
from pathlib import Path

LAYER_DIR = Path(__file__).resolve().parent
NODE_CLIENT = LAYER_DIR / "clients" / "node"
PYTHON_CLIENT = LAYER_DIR / "clients" / "python" / "mongo_sidecar"
FIXED_TIME = (2024, 1, 1, 0, 0, 0)


def node_files() -> list[tuple[str, Path]]:
    """The Node.js client's published files (package.json "files"), under nodejs/node_modules."""
    package = json.loads((NODE_CLIENT / "package.json").read_text())
    entries = ["package.json", *package["files"]]
    files = []
    for entry in entries:
        path = NODE_CLIENT / entry
        found = sorted(p for p in path.rglob("*") if p.is_file()) if path.is_dir() else [path]
        for file in found:
            files.append((f"nodejs/node_modules/mongo-sidecar/{file.relative_to(NODE_CLIENT)}", file))
    return files


def python_files(pyc_dir: Path) -> list[tuple[str, Path]]:
    """The Python client's sources, and bytecode for this interpreter's version.

    /opt is read-only in Lambda, so a runtime cannot cache bytecode there: shipping it saves
    compiling the client at every cold start on the matching Python version.
    """
    files = []
    for source in sorted(PYTHON_CLIENT.rglob("*.py")):
        relative = source.relative_to(PYTHON_CLIENT.parent)
        files.append((f"python/{relative}", source))
        cached = Path(py_compile.compile(
            str(source),
            cfile=str(pyc_dir / relative.parent / "__pycache__" /
                      f"{source.stem}.{sys.implementation.cache_tag}.pyc"),
            invalidation_mode=py_compile.PycInvalidationMode.UNCHECKED_HASH,
            doraise=True,
        ))
        files.append((f"python/{relative.parent}/__pycache__/{cached.name}", cached))
    return files


def add(archive: zipfile.ZipFile, name: str, path: Path, mode: int) -> None:
    info = zipfile.ZipInfo(name, date_time=FIXED_TIME)
    info.external_attr = (stat.S_IFREG | mode) << 16
    info.compress_type = zipfile.ZIP_DEFLATED
    archive.writestr(info, path.read_bytes(), compresslevel=9)


def build(binary: Path, out: Path) -> None:
    if not binary.is_file():
        sys.exit(f"package.py: the extension binary {binary} does not exist")
    out.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as pyc_dir:
        entries = [("extensions/mongo-sidecar", binary)]
        entries += node_files()
        entries += python_files(Path(pyc_dir))
        tmp = out.with_suffix(".zip.tmp")
        with zipfile.ZipFile(tmp, "w") as archive:
            for name, path in sorted(entries, key=lambda e: e[0]):
                add(archive, name, path, 0o755 if name.startswith("extensions/") else 0o644)
        tmp.replace(out)
    print(f"{out}: {out.stat().st_size} bytes ({len(entries)} files)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--binary", type=Path, required=True, help="the extension binary to ship")
    parser.add_argument("--out", type=Path, required=True, help="the zip to write")
    args = parser.parse_args()
    build(args.binary, args.out)


if __name__ == "__main__":
    main()
