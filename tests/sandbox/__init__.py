"""Tests of the offline sandbox over real sockets."""
