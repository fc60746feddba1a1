"""Sonoran CAD: the v1 client (``client.CadClient``) and the v2 client (``v2.CadV2Client``), both an
``interface.CadApi`` over the same models (``models``) and typed errors (``errors``); plan tiers (``tiers``),
v1 request pacing (``limiter``) and v2 per-key budgets (``v2_limits``, numbers in ``v2_endpoints``). The
loopback simulator serving both APIs lives outside the product, in ``testing/cad_simulator.py``.

Nothing here knows about Discord; cogs call a client and show ``CadError.user_message``.
"""
