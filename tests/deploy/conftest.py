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
from harness.layer import ARCHITECTURES, layer_zip
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
def test_layer_zips(tmp_path_factory) -> dict[str, Path]:
    """A layer zip per architecture: the real one (`make layer`, `make layer-arm64`) if it was
    built, else one packaged by layer/package.py around a small stand-in executable. Publishing
    does not run the binary, and zipping the 300 MB debug build would take a minute."""
    zips = {}
    for arch in ARCHITECTURES:
        built = layer_zip(arch)
        if built.is_file():
            zips[arch] = built
            continue
        tmp = tmp_path_factory.mktemp(f"layer-{arch}")
        stand_in = tmp / "mongo-sidecar"
        stand_in.write_text("#!/bin/sh\necho 'a stand-in for the mongo-sidecar extension' >&2\nexit 1\n")
        stand_in.chmod(0o755)
        zips[arch] = tmp / f"mongo-sidecar-layer-{arch}.zip"
        subprocess.run([sys.executable, str(REPO_ROOT / "layer" / "package.py"), "--binary", str(stand_in),
                        "--out", str(zips[arch])], check=True, capture_output=True)
    return zips


@pytest.fixture(scope="session")
def test_layer_zip(test_layer_zips) -> Path:
    return test_layer_zips["x86_64"]

