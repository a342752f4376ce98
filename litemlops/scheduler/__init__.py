"""Pipelines, their run history and the in-process scheduler (APScheduler 3.x).

Importing `litemlops.store` never imports this package.
"""
