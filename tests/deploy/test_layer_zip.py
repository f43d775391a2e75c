"""The layer zips `make layer` and `make layer-arm64` build, each of them: its layout and file
modes, the machine and the glibc its binary needs, its size, and that the clients it ships are
the ones in the repository. (That the binary taken from
the zip runs end to end, with the sample functions importing their clients from the layer's
folders, is what tests/e2e does: its environments mount the unpacked zip at /opt.)

These tests need the real zips: they fail, rather than skip, when one has not been built,
unless MONGO_SIDECAR_BIN says a development binary is being tested instead."""

import json
import os
import re
import stat
import subprocess
import tempfile
import zipfile
from pathlib import Path

import pytest

from harness import REPO_ROOT
from harness.layer import ARCHITECTURES, layer_zip, python_versions

#: Amazon Linux 2, the oldest of Lambda's managed runtimes' systems, has glibc 2.26.
NEWEST_GLIBC_ALLOWED = (2, 26)
#: The goal for the zip's size; reported, not enforced (a figure, not a timing test).
SIZE_GOAL_BYTES = 3_500_000
#: arch -> (the ELF header's e_machine, what `file` calls that machine)
MACHINES = {"x86_64": (62, "x86-64"), "arm64": (183, "ARM aarch64")}


@pytest.fixture(scope="module", params=ARCHITECTURES)
def arch(request) -> str:
    return request.param


@pytest.fixture(scope="module")
def zip_path(arch) -> Path:
    path = layer_zip(arch)
    if not path.is_file():
        if os.environ.get("MONGO_SIDECAR_BIN") and "lambda" not in os.environ["MONGO_SIDECAR_BIN"]:
            pytest.skip(f"{path} not built; testing a development binary")
        pytest.fail(f"{path} not found: run `make layer ARCH={arch}`")
    return path


@pytest.fixture(scope="module")
def entries(zip_path) -> dict[str, zipfile.ZipInfo]:
    with zipfile.ZipFile(zip_path) as archive:
        return {info.filename: info for info in archive.infolist()}


def node_client_files() -> set[str]:
    client = REPO_ROOT / "layer" / "clients" / "node"
    published = ["package.json", *json.loads((client / "package.json").read_text())["files"]]
    files = set()
    for entry in published:
        path = client / entry
        for file in (path.rglob("*") if path.is_dir() else [path]):
            if file.is_file():
                files.add(f"nodejs/node_modules/mongo-sidecar/{file.relative_to(client)}")
    return files


def test_the_layout_is_what_lambda_mounts_at_opt(entries):
    names = set(entries)
    assert "extensions/mongo-sidecar" in names
    assert node_client_files() <= names
    python = {n for n in names if n.startswith("python/")}
    assert "python/mongo_sidecar/__init__.py" in python
    modules = [p.stem for p in (REPO_ROOT / "layer/clients/python/mongo_sidecar").glob("*.py")]
    assert {f"python/mongo_sidecar/{m}.py" for m in modules} <= python
    for version in python_versions():  # bytecode for each Python runtime the layer serves
        tag = "cpython-" + version.replace(".", "")
        assert {f"python/mongo_sidecar/__pycache__/{m}.{tag}.pyc" for m in modules} <= python, version
    unexpected = names - {"extensions/mongo-sidecar"} - node_client_files() - python
    assert not unexpected, f"files the layer should not ship: {sorted(unexpected)}"
    assert not any("test" in n.split("/") or n.endswith((".test.js", "conftest.py")) for n in names)


def test_file_modes_make_only_the_extension_executable(entries):
    for name, info in entries.items():
        mode = (info.external_attr >> 16) & 0o7777
        kind = stat.S_IFMT(info.external_attr >> 16)
        assert kind == stat.S_IFREG, f"{name} is not a regular file"
        expected = 0o755 if name == "extensions/mongo-sidecar" else 0o644
        assert mode == expected, f"{name}: mode {oct(mode)}, expected {oct(expected)}"


@pytest.fixture(scope="module")
def extension_binary(zip_path) -> Path:
    out = Path(tempfile.mkdtemp(prefix="mongo-sidecar-zipbin-")) / "mongo-sidecar"
    with zipfile.ZipFile(zip_path) as archive:
        out.write_bytes(archive.read("extensions/mongo-sidecar"))
    return out


def newest_glibc(binary: Path) -> tuple[int, ...]:
    symbols = subprocess.run(["objdump", "-T", str(binary)], capture_output=True, text=True, check=True).stdout
    versions = {tuple(int(p) for p in v.split(".")) for v in re.findall(r"GLIBC_([0-9.]+)", symbols)}
    assert versions, "no GLIBC symbol versions found: is this a dynamically linked glibc binary?"
    return max(versions)


def test_the_binary_runs_on_amazon_linux_2(zip_path, extension_binary, record_property):
    newest = newest_glibc(extension_binary)
    record_property("newest GLIBC symbol", ".".join(map(str, newest)))
    print(f"{extension_binary.name} ({zip_path.name}): newest GLIBC symbol needed: {'.'.join(map(str, newest))}")
    assert newest <= NEWEST_GLIBC_ALLOWED, f"needs glibc {newest}, Amazon Linux 2 has 2.26"


def test_the_binary_is_stripped_and_for_its_architecture(arch, extension_binary):
    machine, machine_name = MACHINES[arch]
    header = extension_binary.read_bytes()[:20]
    assert header[:5] == b"\x7fELF\x02", "not a 64-bit ELF file"
    assert int.from_bytes(header[18:20], "little") == machine, f"ELF machine {header[18:20]!r}, not {arch}"
    described = subprocess.run(["file", str(extension_binary)], capture_output=True, text=True).stdout
    assert machine_name in described and "stripped" in described and "not stripped" not in described, described


def test_sizes_are_reported(zip_path, extension_binary, record_property):
    zip_size, binary_size = zip_path.stat().st_size, extension_binary.stat().st_size
    record_property("layer zip bytes", zip_size)
    record_property("binary bytes", binary_size)
    verdict = "met" if zip_size <= SIZE_GOAL_BYTES else "not met"
    print(f"{zip_path.name} {zip_size:,} bytes (goal ≤ {SIZE_GOAL_BYTES:,}: {verdict}); binary {binary_size:,} bytes")
    assert zip_size < 50 * 1024 * 1024, "over Lambda's 50 MB limit for a zipped layer"


def test_the_zip_is_reproducible(zip_path, tmp_path, extension_binary):
    """The same inputs give the same bytes, hence the same CodeSha256 when published."""
    again = tmp_path / "again.zip"
    subprocess.run(["python3", str(REPO_ROOT / "layer" / "package.py"), "--binary", str(extension_binary),
                    "--out", str(again)], check=True, capture_output=True)
    assert again.read_bytes() == zip_path.read_bytes()
