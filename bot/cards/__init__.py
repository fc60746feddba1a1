"""Live cards: one Discord message per call (or /panic alert), edited in place as the call changes.

Everything about them lives here: ``state`` (the stored state of each kind and the pure reducers that change it),
``render`` (state to embed), ``buttons`` (the Attach me / Detach me components and their ``custom_id``
template), and ``book`` (the cards one processor batch or command touches: loaded once, changed in memory,
written once). The SQL for card rows is ``bot.storage.cards``; the pipeline (``bot.push``) applies events and
commands to cards through this package, and the delivery worker posts and edits them.
"""
