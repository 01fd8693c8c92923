#!/usr/bin/env bash
# Builds a macOS app bundle with PyInstaller and wraps it in a disk image.
# Run on macOS from the repository root with the project installed in the active Python.
set -euo pipefail
pip install pyinstaller
pyinstaller --noconfirm packaging/netcore-desktop.spec
mkdir -p dist/dmg
cp -R dist/netcore-desktop dist/dmg/"Netcore Desktop"
hdiutil create -volname "Netcore Desktop" -srcfolder dist/dmg -ov -format UDZO dist/netcore-desktop.dmg
