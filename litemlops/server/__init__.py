"""The Starlette server: prediction endpoints, push, feedback, admin API, metrics."""
