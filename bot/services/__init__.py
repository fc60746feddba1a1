"""What the slash commands do, without Discord: given plain values (credentials, a member's unit target, a call
number), act on the CAD, the shared board of CAD reads and the push pipeline, and return what to tell the member.

``members`` says how a stored link names a member's unit and which units on duty are theirs; ``dispatch`` is the
dispatcher's desk (create, attach, detach, note, close, keeping each guild's live card in step); ``panic`` is the
/panic alert that must never wait for the CAD. The cogs parse options, check permissions, defer and reply.
"""
