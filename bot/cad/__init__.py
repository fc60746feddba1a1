"""Sonoran CAD v1: the client (``client.CadClient``), wire models (``models``), typed errors (``errors``),
plan tiers (``tiers``), request pacing (``limiter``) and a loopback simulator (``simulator.CadSimulator``).

Nothing here knows about Discord; cogs call ``CadClient`` and show ``CadError.user_message``.
"""
