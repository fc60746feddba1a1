"""Benchmarks: scripts that measure the bot and print their figures; never part of the test suite.

Run all of them with ``python3 manage.py bench`` (or ``python -m bench``), one with ``python -m bench NAME``.
Each benchmark measures a comparison baseline in the same run, because on a small, noisy machine ratios hold
where absolute times do not, and rewrites its own section of ``docs/PERFORMANCE.md`` (``--no-write`` leaves
the file alone; ``--quick`` is a seconds-long run for the smoke test). All traffic stays on 127.0.0.1, and
every loop is bounded in count and in time.

Benchmarks: ``ingest`` (push listener throughput and ack latency), ``delivery`` (a 1,000-event burst into one
rate-limited channel), ``cards`` (500 updates to one live call card), ``commands`` (``/911`` overhead).
"""
