#!/usr/bin/env bash
# Runs the test suite the way CI does: inside a private D-Bus session with a real,
# unlocked gnome-keyring (Secret Service), a throwaway HOME, and Qt offscreen.
# Extra arguments go to pytest, e.g. `bash tests/run.sh tests/core -x`.
set -euo pipefail
cd "$(dirname "$0")/.."
if [ -z "${NETCORE_IN_TEST_SESSION:-}" ]; then
    export NETCORE_IN_TEST_SESSION=1
    exec dbus-run-session -- bash "$0" "$@"
fi
PY="${PYTHON:-.venv/bin/python}"
scratch="$(mktemp -d)"
trap 'rm -rf "$scratch"' EXIT
export HOME="$scratch/home" XDG_CONFIG_HOME="$scratch/config" XDG_DATA_HOME="$scratch/data" \
    XDG_CACHE_HOME="$scratch/cache" XDG_STATE_HOME="$scratch/state" XDG_RUNTIME_DIR="$scratch/run"
mkdir -p "$HOME" "$XDG_CONFIG_HOME" "$XDG_DATA_HOME" "$XDG_CACHE_HOME" "$XDG_STATE_HOME"
mkdir -m 700 -p "$XDG_RUNTIME_DIR"
# --unlock reads the (throwaway) password from stdin and creates the login keyring.
eval "$(printf 'throwaway-test-password' | gnome-keyring-daemon --unlock --components=secrets)"
export GNOME_KEYRING_CONTROL SSH_AUTH_SOCK 2>/dev/null || true
export QT_QPA_PLATFORM=offscreen QTWEBENGINE_DISABLE_SANDBOX=1 PYTHON_KEYRING_BACKEND=""
unset PYTHON_KEYRING_BACKEND
exec "$PY" -m pytest "$@"
