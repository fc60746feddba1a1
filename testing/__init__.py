"""Test doubles for tests, benchmarks and local development: loopback stand-ins for the services the bot talks to.

Nothing here is part of the product. ``pyproject.toml`` packages only ``bot*`` and ``cogs*`` and the Dockerfile
copies only ``bot/`` and ``cogs/``, so this folder is never installed or shipped; import it from a checkout.
"""
