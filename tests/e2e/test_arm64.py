"""End to end with the arm64 layer (`make layer-arm64`): its extension in Lambda mode under the
emulator, run by qemu-user on this x86_64 machine, serving the Node.js sample function that
imports its client from the same zip.

The kernel here has no binfmt_misc handler for aarch64, so /opt/extensions/mongo-sidecar in this
test is not the arm64 binary itself but a two-line wrapper that execs qemu-aarch64-static on it
(harness/qemu.py). The binary sits at /opt/arm64/mongo-sidecar, outside /opt/extensions, so the
emulator starts the wrapper only. qemu is exec'd through a link named mongo-sidecar, so that the
process bears the extension's name, as it would under a binfmt_misc handler: that is how the
harness finds the extension's process.
"""

import os
import subprocess
from pathlib import Path

import pytest
from bson import ObjectId

from harness import HarnessError
from harness.demo import http_event
from harness.lambda_env import EXTENSION_NAME, SAMPLE_FUNCTIONS, ExecutionEnvironment
from harness.layer import layer_zip, unpack
from harness.qemu import qemu_path, write_wrapper

from test_sample_functions import COLLECTION, answer


@pytest.fixture(scope="module")
def arm64_layer(tmp_path_factory) -> Path:
    """The arm64 zip unpacked as Lambda mounts it at /opt, with the extension behind the wrapper."""
    zip_path = layer_zip("arm64")
    if not zip_path.is_file():
        pytest.fail(f"{zip_path} not found: run `make layer-arm64`", pytrace=False)
    try:
        qemu = qemu_path()
    except HarnessError as e:
        pytest.fail(str(e), pytrace=False)
    opt = unpack(zip_path, tmp_path_factory.mktemp("arm64") / "opt")
    (opt / "arm64").mkdir()
    (opt / "extensions" / EXTENSION_NAME).rename(opt / "arm64" / EXTENSION_NAME)
    (opt / "arm64" / "qemu").mkdir()
    named_qemu = opt / "arm64" / "qemu" / EXTENSION_NAME
    named_qemu.symlink_to(qemu)
    write_wrapper(f"/opt/arm64/{EXTENSION_NAME}", opt / "extensions" / EXTENSION_NAME,
                  qemu=f"/opt/arm64/qemu/{EXTENSION_NAME}")
    return opt


def test_the_arm64_extension_serves_the_sample_function_under_qemu(request, ferretdb, mongo, database,
                                                                   arm64_layer, record_timing):
    fn = ExecutionEnvironment("node", SAMPLE_FUNCTIONS / "node", layer_dir=arm64_layer,
                              env={"MONGODB_URI": ferretdb.uri, "MONGODB_DATABASE": database})
    request.node.lambda_envs = [fn]
    with fn:
        created = fn.invoke(http_event("POST", "/items", {"name": "kettle", "price": 39.5}))
        status, _, item = answer(created)
        assert status == 201, item
        read = answer(fn.invoke(http_event("GET", f"/items/{item['id']}")))
        pid = fn.extension_pid()
        assert pid is not None, "the extension is not running in the environment"
        emulator = os.readlink(f"/proc/{pid}/exe")
        stopped = fn.stop()

    record_timing("cold create invocation (arm64, qemu)", created.elapsed_ms)
    assert Path(emulator).name == "qemu-aarch64-static", f"the extension runs {emulator}, not qemu"
    stored = mongo[database][COLLECTION].find_one({"_id": ObjectId(item["id"])})
    assert stored is not None and (stored["name"], stored["price"]) == ("kettle", 39.5)
    assert read[0] == 200 and read[2] == item
    assert "init done" in fn.log_text(), "the extension did not log its init"
    assert stopped.extension_exited_by_itself, f"exit after SHUTDOWN: {stopped}"


def test_the_arm64_binary_is_an_aarch64_one_this_machine_cannot_run_without_qemu(arm64_layer):
    """Proves the test above runs what the arm64 zip ships, emulated."""
    binary = arm64_layer / "arm64" / EXTENSION_NAME
    assert int.from_bytes(binary.read_bytes()[18:20], "little") == 183  # EM_AARCH64
    with pytest.raises(OSError, match="Exec format error"):
        subprocess.run([str(binary)], capture_output=True, timeout=10)
