"""A local AWS API server (moto) for Secrets Manager, SSM Parameter Store and Lambda layers.

    with MotoServer() as aws:
        boto3.client("secretsmanager", endpoint_url=aws.url, region_name="us-east-1", ...)

Clients reach it with AWS_ENDPOINT_URL=aws.url and any credentials.
"""

import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

from . import HarnessError
from .procs import die_with_parent, free_port, terminate, wait_for_port

#: Credentials moto accepts; never real ones.
DUMMY_CREDENTIALS = {
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_SESSION_TOKEN": "testing",
    "AWS_REGION": "us-east-1",
    "AWS_DEFAULT_REGION": "us-east-1",
}


class MotoServer:
    def __init__(self, start_timeout: float = 30.0):
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.start_timeout = start_timeout
        self.log_path = Path(tempfile.mkdtemp(prefix="mongo-sidecar-moto-")) / "moto.log"
        self._proc: subprocess.Popen | None = None

    def start(self) -> "MotoServer":
        moto = Path(sys.executable).with_name("moto_server")
        if not moto.exists():
            raise HarnessError(f"{moto} not found: run `make tools`")
        with open(self.log_path, "ab") as log:
            self._proc = subprocess.Popen([str(moto), "-H", "127.0.0.1", "-p", str(self.port)],
                                          stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                          preexec_fn=die_with_parent)
        try:
            wait_for_port(self.port, self.start_timeout, self._proc)
        except (TimeoutError, ChildProcessError) as e:
            self.stop()
            raise HarnessError(f"moto_server did not start: {e}\n{self.log_path.read_text()}") from None
        return self

    def client(self, service: str):
        import boto3

        return boto3.client(service, endpoint_url=self.url, region_name="us-east-1",
                            aws_access_key_id="testing", aws_secret_access_key="testing")

    def stop(self) -> None:
        if self._proc is not None:
            terminate(self._proc, timeout=5)
            self._proc = None
        shutil.rmtree(self.log_path.parent, ignore_errors=True)

    def __enter__(self) -> "MotoServer":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()
