"""Hirondelle: self-hosted mail, calendar and contacts in one Python program."""

__version__ = "0.1.0"
