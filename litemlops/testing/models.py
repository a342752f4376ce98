"""Models that misbehave on purpose: the challenger a deployment must catch.

`FaultyModel` wraps a fitted classifier or regressor and, on its schedule, raises or
is slow; registered like any model (joblib pickles it by reference to this module,
so a server's worker processes load it too), it lets a test or a demo watch a canary
roll back, or a shadow leave the champion's answers alone.
"""

from __future__ import annotations

import threading
import time
from typing import Any


class FaultyModel:
    """`inner`'s predictions, except every `fail_every`-th call raises (0: never) and
    each call first sleeps `sleep` seconds.

    The calls are counted per loaded copy, from its first call on.
    """

    def __init__(self, inner: Any, *, fail_every: int = 0, sleep: float = 0.0):
        if fail_every < 0 or sleep < 0:
            raise ValueError("fail_every and sleep must not be negative")
        self.inner = inner
        self.fail_every = fail_every
        self.sleep = sleep
        if hasattr(inner, "classes_"):
            self.classes_ = inner.classes_
        self._calls = 0
        self._lock = threading.Lock()

    def __getstate__(self) -> dict[str, Any]:
        state = self.__dict__.copy()
        del state["_lock"]
        state["_calls"] = 0
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)
        self._lock = threading.Lock()

    def _call(self) -> None:
        with self._lock:
            self._calls += 1
            calls = self._calls
        if self.fail_every and calls % self.fail_every == 0:
            raise RuntimeError(f"FaultyModel failed on call {calls} (every {self.fail_every})")
        if self.sleep:
            time.sleep(self.sleep)

    def predict_proba(self, X: Any) -> Any:
        self._call()
        return self.inner.predict_proba(X)

    def predict(self, X: Any) -> Any:
        self._call()
        return self.inner.predict(X)
