"""Tests of the Qt-free core (a package, so module names never clash with other test folders)."""
