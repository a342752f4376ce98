"""What a process costs, from /proc (Linux): CPU seconds, resident memory, its descendants.

Standard library only: the load process imports this to read the server's CPU
at the edges of its timed window.
"""

from __future__ import annotations

import contextlib
import os
from dataclasses import dataclass, field
from pathlib import Path

TICKS = os.sysconf("SC_CLK_TCK")


def _stat(pid: int) -> list[str]:
    """The fields of /proc/<pid>/stat after the command name (which may hold spaces)."""
    return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()


def cpu_seconds(pid: int) -> float:
    """User + system CPU of a process so far, every thread included."""
    fields = _stat(pid)
    return (int(fields[11]) + int(fields[12])) / TICKS


def rss_mb(pid: int) -> tuple[float, float]:
    """(current, peak) resident set size in MB: VmRSS and VmHWM."""
    status = dict(
        line.split(":", 1) for line in Path(f"/proc/{pid}/status").read_text().splitlines()
    )
    # A process that has exited but not been reaped yet (a zombie) has no memory lines.
    current, peak = (int(status.get(key, "0").split()[0]) / 1024 for key in ("VmRSS", "VmHWM"))
    return current, peak


def descendants(pid: int) -> list[int]:
    """Every live process below `pid` (children, their children...)."""
    parents: dict[int, list[int]] = {}
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        try:
            ppid = int(_stat(int(entry.name))[1])
        except (OSError, IndexError, ValueError):  # exited meanwhile
            continue
        parents.setdefault(ppid, []).append(int(entry.name))
    found: list[int] = []
    todo = [pid]
    while todo:
        children = parents.get(todo.pop(), [])
        found += children
        todo += children
    return found


def tree_rss(pid: int) -> tuple[float, float, int]:
    """(the process's RSS, its descendants' summed RSS, how many descendants) in MB."""
    own = rss_mb(pid)[0]
    children = 0.0
    found = descendants(pid)
    for child in found:
        with contextlib.suppress(OSError):  # exited meanwhile
            children += rss_mb(child)[0]
    return own, children, len(found)


@dataclass
class TreeCPU:
    """A process's own CPU and its descendants', at one moment."""

    own: float
    reaped: float  # children that exited and were waited for (cutime + cstime)
    # pid -> (start time in ticks, CPU seconds) of each live descendant
    live: dict[int, tuple[int, float]] = field(default_factory=dict)

    @classmethod
    def read(cls, pid: int) -> TreeCPU:
        fields = _stat(pid)
        own = (int(fields[11]) + int(fields[12])) / TICKS
        reaped = (int(fields[13]) + int(fields[14])) / TICKS
        live = {}
        for child in descendants(pid):
            try:
                f = _stat(child)
            except OSError:
                continue
            live[child] = (int(f[19]), (int(f[11]) + int(f[12])) / TICKS)
        return cls(own, reaped, live)

    def children_since(self, before: TreeCPU) -> float:
        """Descendants' CPU between two readings (a child reaped meanwhile counts whole)."""
        spent = self.reaped - before.reaped
        for pid, (started, cpu) in self.live.items():
            then = before.live.get(pid)
            spent += cpu - then[1] if then is not None and then[0] == started else cpu
        return spent
