"""Builds the Lambda layer zip: the extension binary and the thin clients, laid out as Lambda
expects them under /opt.

    extensions/mongo-sidecar                  the extension (0755); Lambda starts it at init
    nodejs/node_modules/mongo-sidecar/        require('mongo-sidecar') in Node.js runtimes
    python/mongo_sidecar/                     import mongo_sidecar in Python runtimes, with
                                              bytecode for each of PYTHON_VERSIONS

Usage: python3 layer/package.py --binary PATH --out dist/mongo-sidecar-layer-x86_64.zip
       python3 layer/package.py --list-pythons     the interpreters it compiles the bytecode with

The zip is reproducible: entries are sorted and carry a fixed timestamp, so the same inputs
give the same bytes (and the same CodeSha256 when published).
"""

import argparse
import json
import os
import shutil
import stat
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

LAYER_DIR = Path(__file__).resolve().parent
NODE_CLIENT = LAYER_DIR / "clients" / "node"
PYTHON_CLIENT = LAYER_DIR / "clients" / "python" / "mongo_sidecar"
FIXED_TIME = (2024, 1, 1, 0, 0, 0)
#: The Python runtimes the layer serves, Lambda's python3.9 to python3.13.
PYTHON_VERSIONS = ("3.9", "3.10", "3.11", "3.12", "3.13")

# Run by each interpreter: compiles SOURCE TARGET pairs into bytecode that never checks its source
# (/opt is read-only: nothing could rewrite it), and prints its cache tag (cpython-312).
_COMPILE = """
import py_compile, sys
for source, target in zip(sys.argv[1::2], sys.argv[2::2]):
    py_compile.compile(source, cfile=target.replace("TAG", sys.implementation.cache_tag), doraise=True,
                       invalidation_mode=py_compile.PycInvalidationMode.UNCHECKED_HASH)
print(sys.implementation.cache_tag)
"""


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


def find_python(version: str) -> Path:
    """An interpreter of `version`: pythonX.Y on PATH, else pyenv's newest X.Y.* (this machine's
    pyenv has every version the layer serves)."""
    pyenv_versions = Path(os.environ.get("PYENV_ROOT") or Path.home() / ".pyenv") / "versions"
    candidates = [shutil.which(f"python{version}")]
    candidates += sorted(pyenv_versions.glob(f"{version}.*/bin/python{version}"),
                         key=lambda p: [int(n) for n in p.parts[-3].split(".") if n.isdigit()], reverse=True)
    for candidate in filter(None, candidates):
        found = subprocess.run([str(candidate), "-c", "import sys; print('%d.%d' % sys.version_info[:2])"],
                               capture_output=True, text=True)
        if found.returncode == 0 and found.stdout.strip() == version:  # a pyenv shim may fail or differ
            return Path(candidate)
    sys.exit(f"package.py: no Python {version} found (python{version} on PATH, or pyenv's {pyenv_versions}): the layer "
             f"ships bytecode for Python {', '.join(PYTHON_VERSIONS)}; install it, e.g. `pyenv install {version}`")


def python_files(pyc_dir: Path) -> list[tuple[str, Path]]:
    """The Python client's sources, and bytecode for each of PYTHON_VERSIONS in __pycache__ beside
    them, where each version finds its own (PEP 3147).

    /opt is read-only in Lambda, so a runtime cannot cache bytecode there: shipping it saves
    compiling the client at every cold start.
    """
    sources = sorted(PYTHON_CLIENT.rglob("*.py"))
    relatives = [source.relative_to(PYTHON_CLIENT.parent) for source in sources]
    files = [(f"python/{relative}", source) for relative, source in zip(relatives, sources)]
    targets = [pyc_dir / relative.parent / "__pycache__" / f"{relative.stem}.TAG.pyc" for relative in relatives]
    for version in PYTHON_VERSIONS:
        pairs = [str(path) for pair in zip(sources, targets) for path in pair]
        # A fixed hash seed: the order of a set constant in bytecode follows its strings' hashes.
        tag = subprocess.run([str(find_python(version)), "-c", _COMPILE, *pairs], check=True, capture_output=True,
                             text=True, env=os.environ | {"PYTHONHASHSEED": "0"}).stdout.strip()
        for relative, target in zip(relatives, targets):
            compiled = Path(str(target).replace("TAG", tag))
            files.append((f"python/{relative.parent}/__pycache__/{compiled.name}", compiled))
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
    parser.add_argument("--binary", type=Path, help="the extension binary to ship")
    parser.add_argument("--out", type=Path, help="the zip to write")
    parser.add_argument("--list-pythons", action="store_true",
                        help="print each Python version the layer serves and the interpreter that compiles its bytecode")
    args = parser.parse_args()
    if args.list_pythons:
        for version in PYTHON_VERSIONS:
            print(version, find_python(version))
    elif args.binary and args.out:
        build(args.binary, args.out)
    else:
        parser.error("--binary and --out are required")


if __name__ == "__main__":
    main()
