#!/usr/bin/env bash
# Installs Netcore Desktop for the current user on Linux: a private virtual environment
# under ~/.local/share/netcore-desktop/venv, the `netcore-desktop` command in ~/.local/bin,
# and the desktop entry, icon and AppStream metadata so it shows in the application menu.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
root="$(cd "$here/../.." && pwd)"
data="${XDG_DATA_HOME:-$HOME/.local/share}"
venv="$data/netcore-desktop/venv"
python3 -m venv "$venv"
"$venv/bin/pip" install --upgrade pip >/dev/null
"$venv/bin/pip" install "$root"
mkdir -p "$HOME/.local/bin" "$data/applications" "$data/icons/hicolor/scalable/apps" "$data/metainfo"
ln -sf "$venv/bin/netcore-desktop" "$HOME/.local/bin/netcore-desktop"
install -m 644 "$here/org.netcoredesktop.NetcoreDesktop.desktop" "$data/applications/"
install -m 644 "$root/resources/icons/netcore-desktop.svg" \
    "$data/icons/hicolor/scalable/apps/org.netcoredesktop.NetcoreDesktop.svg"
install -m 644 "$here/org.netcoredesktop.NetcoreDesktop.metainfo.xml" "$data/metainfo/"
command -v update-desktop-database >/dev/null && update-desktop-database "$data/applications" || true
echo "Installed. Run: netcore-desktop --sandbox"
