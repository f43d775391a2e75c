"""The arm64 extension on an x86_64 machine, under qemu-user.

Debian's qemu-user-static runs an aarch64 Linux binary as a process of this machine, and
libc6-arm64-cross provides the aarch64 glibc it links against (`make system-deps`, or `make test`
as root, installs both). The kernel here has no binfmt_misc handler for aarch64, so the harness
runs the binary through a wrapper, a two-line script it uses in place of the binary:

    #!/bin/sh
    exec qemu-aarch64-static -L /usr/aarch64-linux-gnu /path/to/mongo-sidecar "$@"

Command line: `python -m harness.qemu BINARY WRAPPER` writes the wrapper for BINARY (the Makefile
runs the API suite against it through MONGO_SIDECAR_BIN).
"""

import shlex
import shutil
import sys
from pathlib import Path

from . import HarnessError

QEMU = "qemu-aarch64-static"
#: Where libc6-arm64-cross puts the aarch64 dynamic loader and glibc; qemu's -L prefix.
ARM64_SYSROOT = Path("/usr/aarch64-linux-gnu")


def qemu_path() -> Path:
    """qemu-aarch64-static, after checking that the aarch64 glibc is there too."""
    found = shutil.which(QEMU)
    if found is None or not (ARM64_SYSROOT / "lib" / "ld-linux-aarch64.so.1").exists():
        raise HarnessError(f"{QEMU} or the aarch64 glibc in {ARM64_SYSROOT} not found: run `make system-deps` "
                           "(Debian packages qemu-user-static and libc6-arm64-cross)")
    return Path(found)


def write_wrapper(binary: Path | str, wrapper: Path, qemu: Path | str | None = None) -> Path:
    """Writes `wrapper`, a script that runs the aarch64 `binary` under qemu with the arguments it
    is given. `qemu` is the emulator to exec (default: qemu-aarch64-static on PATH)."""
    qemu = qemu or qemu_path()
    wrapper.parent.mkdir(parents=True, exist_ok=True)
    wrapper.write_text(f'#!/bin/sh\nexec {shlex.quote(str(qemu))} -L {shlex.quote(str(ARM64_SYSROOT))} '
                       f'{shlex.quote(str(binary))} "$@"\n')
    wrapper.chmod(0o755)
    return wrapper


if __name__ == "__main__":
    if len(sys.argv) != 3:
        sys.exit("usage: python -m harness.qemu BINARY WRAPPER")
    try:
        binary = Path(sys.argv[1]).resolve()
        if not binary.is_file():
            raise HarnessError(f"{binary} not found: run `make layer-arm64`")
        print(write_wrapper(binary, Path(sys.argv[2])))
    except HarnessError as e:
        sys.exit(f"error: {e}")
