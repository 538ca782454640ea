"""Real certificates for the TLS tests, made with the `openssl` command (a test that needs
them is skipped, with the reason printed, when openssl is absent)."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

_EC = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"]


def openssl() -> str:
    found = shutil.which("openssl")
    if found is None:
        print("skipped: the openssl command is needed to make test certificates")
        pytest.skip("the openssl command is needed to make test certificates")
    return found


def _run(*argv: str) -> None:
    subprocess.run([openssl(), *argv], check=True, capture_output=True, timeout=60)


class Authority:
    """A throwaway CA in `directory` that issues certificates by Common Name."""

    def __init__(self, directory: Path, name: str = "test-ca") -> None:
        directory.mkdir(parents=True, exist_ok=True)
        self.directory = directory
        self.cert = directory / f"{name}.crt"
        self.key = directory / f"{name}.key"
        self._serial = 1
        _run("req", "-x509", *_EC, "-days", "1", "-subj", f"/CN={name}",
             "-keyout", str(self.key), "-out", str(self.cert))  # fmt: skip

    def issue(self, common_name: str, stem: str | None = None) -> tuple[Path, Path]:
        """(certificate, private key, mode 0600) for `common_name`, signed by this CA."""
        stem = stem or common_name
        cert, key = self.directory / f"{stem}.crt", self.directory / f"{stem}.key"
        request = self.directory / f"{stem}.csr"
        self._serial += 1
        _run("req", "-new", *_EC, "-subj", f"/CN={common_name}", "-keyout", str(key),
             "-out", str(request))  # fmt: skip
        _run("x509", "-req", "-in", str(request), "-CA", str(self.cert), "-CAkey",
             str(self.key), "-set_serial", str(self._serial), "-days", "1",
             "-out", str(cert))  # fmt: skip
        key.chmod(0o600)
        return cert, key
