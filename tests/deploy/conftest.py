"""Fixtures for the deploy tests: a local AWS (moto) and a layer zip to publish. Helpers live in
deploysupport.py.

Run (from the repository root): `.tools/venv/bin/python -m pytest tests/deploy`. Nothing here
reaches real AWS: every AWS CLI and boto3 call goes to the moto server through AWS_ENDPOINT_URL,
with dummy credentials."""

import os
import subprocess
import sys
from pathlib import Path

import pytest

from harness import REPO_ROOT
from harness.layer import layer_zip
from harness.moto import DUMMY_CREDENTIALS, MotoServer


@pytest.fixture(scope="session")
def aws():
    with MotoServer() as server:
        yield server


@pytest.fixture(scope="session")
def aws_env(aws) -> dict[str, str]:
    """The environment for AWS CLI commands: moto's endpoint and dummy credentials only (any
    AWS_PROFILE or real credentials of the caller are dropped)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    return env | DUMMY_CREDENTIALS | {"AWS_ENDPOINT_URL": aws.url}


@pytest.fixture(scope="session")
def test_layer_zip(tmp_path_factory) -> Path:
    """A layer zip: the real one (`make layer`) if it was built, else one packaged by
    layer/package.py around a small stand-in executable. Publishing does not run the binary, and
    zipping the 300 MB debug build would take a minute."""
    built = layer_zip()
    if built.is_file():
        return built
    tmp = tmp_path_factory.mktemp("layer")
    stand_in = tmp / "mongo-sidecar"
    stand_in.write_text("#!/bin/sh\necho 'a stand-in for the mongo-sidecar extension' >&2\nexit 1\n")
    stand_in.chmod(0o755)
    out = tmp / "mongo-sidecar-layer-x86_64.zip"
    subprocess.run([sys.executable, str(REPO_ROOT / "layer" / "package.py"), "--binary", str(stand_in),
                    "--out", str(out)], check=True, capture_output=True)
    return out

