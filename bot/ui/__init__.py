"""Reusable Discord UI pieces (views) that cogs share; formatting stays in ``bot.formatting``."""
