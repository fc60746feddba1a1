"""Sonoran CAD Discord bot."""
