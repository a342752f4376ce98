"""Running a command with its stderr on a terminal, to see what a person would."""

import fcntl
import os
import pty
import struct
import subprocess
import sys
import termios


def on_a_terminal(*args, env=None):
    """(exit code, stdout, what `python -m litemlops ARGS` wrote to its terminal stderr)."""
    clean = {k: v for k, v in os.environ.items() if not k.startswith("LITEMLOPS_")}
    main, terminal = pty.openpty()
    # A terminal of 24 x 100 characters (a new pty has none, and bars fit its width).
    fcntl.ioctl(terminal, termios.TIOCSWINSZ, struct.pack("HHHH", 24, 100, 0, 0))
    process = subprocess.Popen([sys.executable, "-m", "litemlops", *args],
                               stdout=subprocess.PIPE, stderr=terminal,
                               env={**clean, **(env or {})})
    os.close(terminal)
    written = b""
    while True:
        try:
            chunk = os.read(main, 4096)
        except OSError:  # the command closed its end
            break
        if not chunk:
            break
        written += chunk
    os.close(main)
    out = process.stdout.read().decode()
    return process.wait(timeout=60), out, written.decode(errors="replace")
