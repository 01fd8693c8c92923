"""Throwaway TLS certificates for the tests, made by ``trustme``.

A test certificate authority signs a server certificate (by default for ``127.0.0.1`` and
``localhost``, where the sandbox listens). Trusting that CA stands for a company's own CA
bundle; not trusting it stands for a relay whose certificate this computer cannot verify.
"""

from __future__ import annotations

import ssl
from dataclasses import dataclass
from pathlib import Path

import trustme


@dataclass(frozen=True)
class Tls:
    """A test CA (its PEM file too) and the files of a server certificate it signed."""

    ca: trustme.CA
    ca_file: Path
    cert: Path
    key: Path

    def trusting(self) -> ssl.SSLContext:
        """Client settings that trust the test CA only (host names checked)."""
        context = ssl.create_default_context()
        self.ca.configure_trust(context)
        return context


def make_tls(folder: Path, *names: str) -> Tls:
    """A new CA and a server certificate for ``names`` (default: 127.0.0.1 and localhost)."""
    ca = trustme.CA()
    server = ca.issue_cert(*(names or ("127.0.0.1", "localhost")))
    tls = Tls(ca, folder / "ca.pem", folder / "server.pem", folder / "server.key")
    ca.cert_pem.write_to_path(str(tls.ca_file))
    tls.cert.write_bytes(b"".join(blob.bytes() for blob in server.cert_chain_pems))
    server.private_key_pem.write_to_path(str(tls.key))
    return tls
