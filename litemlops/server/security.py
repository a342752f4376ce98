"""The admin token and where the server may listen.

Mutating endpoints need the token. It is made at first start in `<home>/token`
(mode 0600, readable by the home's owner only) unless set explicitly in config
or the environment. Listening beyond loopback needs an explicit token: a
token that only sits in a file nobody was told about protects nobody on a
network, and an accidental `--host 0.0.0.0` must not open the admin API.
"""

from __future__ import annotations

import hmac
import ipaddress
import os
import secrets
from pathlib import Path

from litemlops.config import Config
from litemlops.errors import ConfigError

HEADER = "authorization"  # "Bearer <token>"
ALT_HEADER = "x-litemlops-token"


def admin_token(config: Config) -> tuple[str, bool]:
    """(token, explicit): from config/environment, else `<home>/token`, made if missing."""
    if config.server.token:
        if len(config.server.token) < 16:
            raise ConfigError("server.token must be at least 16 characters long")
        return config.server.token, True
    return _token_file(config.token_path), False


def read_admin_token(config: Config) -> str:
    """The token a client of the home's server sends: from config/environment, else
    `<home>/token` (never made here: the server makes it)."""
    if config.server.token:
        return config.server.token
    try:
        return _read_token(config.token_path)
    except FileNotFoundError:
        raise ConfigError(
            f"no admin token at {config.token_path}; set LITEMLOPS_SERVER_TOKEN to the "
            "server's token"
        ) from None


def _token_file(path: Path) -> str:
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return _read_token(path)
    token = secrets.token_urlsafe(32)
    with os.fdopen(fd, "w") as fh:
        fh.write(token + "\n")
    return token


def _read_token(path: Path) -> str:
    mode = path.stat().st_mode & 0o777
    if mode & 0o077:
        raise ConfigError(
            f"{path} is readable by other users (mode {mode:o}); run `chmod 600 {path}`"
        )
    token = path.read_text().strip()
    if len(token) < 16:
        raise ConfigError(f"{path} holds no usable token; delete it to make a new one")
    return token


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False  # a host name: it may resolve to anything


def check_bind(host: str, explicit_token: bool) -> None:
    if not is_loopback(host) and not explicit_token:
        raise ConfigError(
            f"refusing to listen on {host!r} without an explicit admin token: set "
            "LITEMLOPS_SERVER_TOKEN (or server.token in config.toml) first, or bind 127.0.0.1"
        )


def token_matches(presented: str | None, token: str) -> bool:
    """Constant-time comparison, so response times do not leak the token."""
    if not presented:
        return False
    if presented.lower().startswith("bearer "):
        presented = presented[7:]
    return hmac.compare_digest(presented.strip().encode(), token.encode())
