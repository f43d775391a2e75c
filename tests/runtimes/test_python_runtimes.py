"""The Python client on every Python runtime the layer serves (layer/package.py PYTHON_VERSIONS,
Lambda's python3.9 to python3.13), each interpreter from .tools/python-runtimes (`make tools` makes
a venv per version from the machine's interpreters: `python3 layer/package.py --list-pythons`):

- each runtime loads the client from the layer zip's own bytecode, compiling nothing;
- the client's whole test suite (layer/clients/python/tests) passes on each, against the sidecar
  and FerretDB (MONGO_SIDECAR_BIN, MONGO_SIDECAR_TEST_URI: run through `make test-python-runtimes`).
"""

import os
import re
import subprocess

import pytest

from harness import REPO_ROOT, TOOLS_DIR
from harness.layer import layer_zip, python_versions, unpack

CLIENT = REPO_ROOT / "layer" / "clients" / "python"
RUNTIMES = TOOLS_DIR / "python-runtimes"
PYTHON_VERSIONS = python_versions()


@pytest.fixture(params=PYTHON_VERSIONS)
def python(request) -> str:
    interpreter = RUNTIMES / request.param / "bin" / "python"
    if not interpreter.exists():
        pytest.fail(f"{interpreter} not found: run `make tools`", pytrace=False)
    return str(interpreter)


@pytest.fixture(scope="module")
def layer_python(tmp_path_factory):
    """The python/ folder of the x86_64 layer zip, unpacked as Lambda mounts it."""
    zip_path = layer_zip()
    if not zip_path.is_file():
        pytest.fail(f"{zip_path} not found: run `make layer`", pytrace=False)
    return unpack(zip_path, tmp_path_factory.mktemp("layer")) / "python"


def test_each_runtime_loads_the_client_from_the_layers_bytecode(python, layer_python):
    # -v reports where each module's code came from; -B: nothing may be written, /opt is read-only.
    run = subprocess.run([python, "-v", "-B", "-c", "import mongo_sidecar"], capture_output=True, text=True,
                         env={"PATH": os.environ["PATH"], "PYTHONPATH": str(layer_python)})

    assert run.returncode == 0, run.stderr[-2000:]
    modules = sorted(p.stem for p in (layer_python / "mongo_sidecar").glob("*.py"))
    loaded = re.findall(r"# code object from '?\S*/mongo_sidecar/__pycache__/(\w+)\.cpython-\d+\.pyc", run.stderr)
    assert sorted(loaded) == modules, run.stderr[-3000:]


def test_the_client_suite_passes_on_each_runtime(python, record_property):
    run = subprocess.run([python, "-m", "pytest", "-p", "no:cacheprovider"], cwd=CLIENT, capture_output=True,
                         text=True, timeout=600, env=os.environ | {"PYTHONDONTWRITEBYTECODE": "1"})

    summary = (run.stdout.strip().splitlines() or ["(no output)"])[-1]
    version = subprocess.run([python, "-V"], capture_output=True, text=True).stdout.strip()
    record_property("client suite", f"{version}: {summary}")
    print(f"{version}: {summary}")
    assert run.returncode == 0, run.stdout[-5000:] + run.stderr[-2000:]
    assert re.search(r"\d+ passed", summary) and "failed" not in summary, summary
