"""Netcore Desktop: compose, preview, send and resend email through Netcore's email API."""

__version__ = "0.1.0"
