"""Fixtures shared by every test folder, and the hypothesis profiles."""

import os

from hypothesis import settings

from tests.harness import (
    bot_settings,
    bot_storage,
    cad_world_sim,
    http_session,
    simcord_bot,
    simcord_env,
    world,
)

__all__ = [
    "bot_settings",
    "bot_storage",
    "cad_world_sim",
    "http_session",
    "simcord_bot",
    "simcord_env",
    "world",
]

# Property tests (tests/cad/test_properties.py) run the "ci" profile unless HYPOTHESIS_PROFILE says otherwise:
# - derandomize: every run draws the same examples, so the suite is reproducible (a failure in CI fails the
#   same way on a laptop) and never turns red on an unlucky draw; the search does not grow run by run, which
#   is what the "explore" profile is for (HYPOTHESIS_PROFILE=explore python3 manage.py test tests/cad);
# - a modest max_examples keeps the property tests at a few seconds on a shared 2-core machine;
# - no deadline: a slow moment on a busy machine is not a failure (tests must not depend on wall-clock speed);
# - no example database: nothing is written into the worktree, and derandomized runs would not use it.
settings.register_profile("ci", max_examples=10, derandomize=True, deadline=None, database=None)
settings.register_profile("explore", max_examples=1_000, deadline=None)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci"))
