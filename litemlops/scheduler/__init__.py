"""Pipelines, their run history and the in-process scheduler (on APScheduler 3.x triggers).

Importing `litemlops.store` never imports this package.
"""
