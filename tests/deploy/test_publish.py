"""`make publish` against a local AWS (moto): it publishes the layer zip it is given and prints
the new layer version's ARN, which is what `make deploy-sample` and users then pass on."""

import base64
import hashlib
import re
import uuid

import pytest

from deploysupport import AWS_CLI, make
from harness.layer import ARCHITECTURES


def publish(aws_env, zip_path, layer_name, arch="x86_64"):
    return make(["publish", f"LAYER_NAME={layer_name}", "AWS_REGION=us-east-1", f"ARCH={arch}",
                 f"LAYER_ZIP={zip_path}", f"AWS_CLI={AWS_CLI}"], aws_env)


@pytest.mark.parametrize("arch", ARCHITECTURES)
def test_make_publish_publishes_the_zip_and_prints_the_layer_version_arn(aws, aws_env, test_layer_zips, arch):
    name = f"mongo-sidecar-test-{uuid.uuid4().hex[:8]}"
    test_layer_zip = test_layer_zips[arch]

    first = publish(aws_env, test_layer_zip, name, arch)
    second = publish(aws_env, test_layer_zip, name, arch)

    assert first.returncode == 0, first.stderr
    arn = first.stdout.strip()
    assert re.fullmatch(rf"arn:aws:lambda:us-east-1:[0-9]{{12}}:layer:{name}:1", arn), first.stdout
    assert second.returncode == 0 and second.stdout.strip() == arn[: -len("1")] + "2", second.stdout
    lam = aws.client("lambda")
    versions = lam.list_layer_versions(LayerName=name)["LayerVersions"]
    assert sorted(v["LayerVersionArn"] for v in versions) == [arn, second.stdout.strip()]
    # By name and number: moto 5.2.5 answers GetLayerVersionByArn with a 500.
    published = lam.get_layer_version(LayerName=name, VersionNumber=1)
    assert published["LayerVersionArn"] == arn
    expected_sha = base64.b64encode(hashlib.sha256(test_layer_zip.read_bytes()).digest()).decode()
    assert published["Content"]["CodeSha256"] == expected_sha
    assert published["Content"]["CodeSize"] == test_layer_zip.stat().st_size
    assert published["CompatibleArchitectures"] == [arch]
    assert published["LicenseInfo"] == "Apache-2.0"


def test_make_publish_refuses_a_missing_zip_before_calling_aws(aws, aws_env, tmp_path):
    name = f"mongo-sidecar-test-{uuid.uuid4().hex[:8]}"

    result = publish(aws_env, tmp_path / "no-such-layer.zip", name)

    assert result.returncode != 0
    assert "no-such-layer.zip not found" in result.stderr, result.stderr
    assert aws.client("lambda").list_layer_versions(LayerName=name)["LayerVersions"] == []
