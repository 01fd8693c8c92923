"""TEMPORARY: the sandbox fixtures until tests/conftest.py provides them."""

from client.conftest import sandbox, sandbox_factory  # noqa: F401
