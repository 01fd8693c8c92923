"""Window tests (pytest-qt, against the real sandbox and keyring)."""
