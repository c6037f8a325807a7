"""The engine server's configuration, read from the environment with documented defaults.

| variable | default | meaning |
|---|---|---|
| ``TETHER_STORAGE_BACKEND`` | the URL's | ``sqlite``, ``postgres``, ``memory`` (keeps nothing) |
| ``TETHER_DATABASE_URL`` | ``sqlite:///.tether/runtime.db`` | the journal (or ``postgresql://``) |
| ``TETHER_BIND`` | ``127.0.0.1`` | address the HTTP API listens on |
| ``TETHER_PORT`` | ``7700`` | HTTP port |
| ``TETHER_WORKER_PORT`` | ``7701`` | ZeroMQ port for ``tether worker`` processes (``0``: none) |
| ``TETHER_TOKEN`` | unset | bearer token every route but ``/health`` requires (16+ characters) |
| ``TETHER_ALLOWED_HOSTS`` | unset | other names to answer as, comma-separated (``*``: any) |
| ``TETHER_EMBED_WORKERS`` | ``64`` | in-process worker slots (``0``: remote workers only) |
| ``TETHER_EMBED_CRON`` | ``true`` | run cron schedules in this engine |
| ``TETHER_SHARED`` | ``false`` | one of several engines on one Postgres database (``--shared``) |
| ``TETHER_OWNERSHIP_TTL_MS`` | ``10000`` | a stopped shared engine's runs move after this |
| ``TETHER_LOG_LEVEL`` | ``info`` | ``debug``, ``info``, ``warning`` or ``error`` |
| ``TETHER_MAX_BODY_BYTES`` | ``1048576`` | largest request body accepted (413 above) |
| ``TETHER_HTTP_LEASE_TTL_MS`` | ``30000`` | an HTTP worker's step may run this long unheartbeated |
| ``TETHER_MAX_CONNECTIONS`` | ``1000`` | open HTTP connections; past it the longest-idle closes |
| ``TETHER_HEADER_TIMEOUT_SECS`` | ``10`` | a connection has this long to send a request's head |
| ``TETHER_KEEP_ALIVE_SECS`` | ``5`` | an idle keep-alive connection is closed after this |
| ``TETHER_HTTP_WORKER_QUEUES`` | unset | the only queues HTTP workers may claim (comma-separated) |
| ``TETHER_LEASE_KEY`` | unset | secret (32+ characters) signing HTTP workers' lease tokens |
| ``TETHER_TOKENS_FILE`` | unset | named tokens, a line each: ``user_id[:role,role] token`` |
| ``TETHER_REDACT`` | unset | redaction at every exit: ``mask``, ``hash``, a JSON policy, a file |
| ``TETHER_REDACT_KEY`` | unset | ``hash`` redaction's key (else ``redaction.key`` in the keys) |

A caller with a named token acts as its user (approvals are recorded under it); the shared
``TETHER_TOKEN`` names nobody. Either kind of token satisfies the rule below.

HTTP workers are only ever handed the queues of python_fn steps the engine has no function
for, never its own tools' queues; ``TETHER_HTTP_WORKER_QUEUES`` narrows that to a list.

Binding anything but a loopback address without ``TETHER_TOKEN`` is refused: the API starts
and cancels runs, so it is never left open on a network by accident. A token shorter than
:data:`~tether.server.api_keys.MIN_TOKEN_CHARS` is refused too: it could be guessed.

Example::

    config = ServerConfig.from_env(os.environ)      # raises ConfigError naming the variable
"""

from __future__ import annotations

import ipaddress
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Final

from tether.errors import TetherError
from tether.governance.redaction.settings import RedactionSettingsError, policy_from_env
from tether.ir.governance import RedactPolicy
from tether.persistence.urls import POSTGRES_SCHEMES, display_url
from tether.server.api_keys import (
    ApiKeys,
    NamedToken,
    TokensFileError,
    parse_tokens_file,
    token_shape_problem,
)

__all__ = ["ConfigError", "ServerConfig", "is_loopback"]

DEFAULT_PORT: Final = 7700
DEFAULT_WORKER_PORT: Final = 7701
DEFAULT_DATABASE_URL: Final = "sqlite:///.tether/runtime.db"
LOG_LEVELS: Final = ("debug", "info", "warning", "error")
STORAGE_BACKENDS: Final = ("sqlite", "postgres", "memory")
#: A shorter lease-token key is refused at start.
MIN_LEASE_KEY_CHARS: Final = 32


class ConfigError(TetherError, ValueError):
    """A setting that cannot be used; the message names the variable and what it expects."""


def journal_url(value: str) -> str:
    """The journal's URL for ``value``: a URL as given, a plain file path as its SQLite URL
    (``data/runtime.db`` -> ``sqlite:///data/runtime.db``, as ``jamjet dev --db`` takes).

    Example::

        journal_url("/var/lib/tether/runtime.db")    # 'sqlite:////var/lib/tether/runtime.db'
    """
    value = value.strip()
    return value if "://" in value else f"sqlite:///{value}"


@dataclass(frozen=True)
class ServerConfig:
    database_url: str = DEFAULT_DATABASE_URL
    bind: str = "127.0.0.1"
    port: int = DEFAULT_PORT
    worker_port: int = DEFAULT_WORKER_PORT
    token: str | None = None
    #: Names (lower case; IPv6 in brackets) the API answers to besides the bound address and
    #: loopback; ``"*"`` among them turns the Host and Origin checks off.
    allowed_hosts: tuple[str, ...] = ()
    embed_workers: int = 64
    embed_cron: bool = True
    #: One of several engines sharing a Postgres database (tether.runtime.ownership).
    shared: bool = False
    ownership_ttl_ms: int = 10_000
    log_level: str = "info"
    max_body_bytes: int = 1 << 20
    http_lease_ttl_ms: int = 30_000
    max_connections: int = 1000
    header_timeout_secs: int = 10
    keep_alive_secs: int = 5
    http_worker_queues: frozenset[str] | None = None
    #: Signs HTTP workers' lease tokens; a secret no worker holds (unset: random per start).
    lease_key: str | None = None
    #: Tokens that stand for one user each (``TETHER_TOKENS_FILE``).
    named_tokens: tuple[NamedToken, ...] = ()
    #: The engine's own redaction policy (``TETHER_REDACT``), beside its workflows'.
    redact: RedactPolicy | None = None

    def api_keys(self) -> ApiKeys:
        """The tokens callers may present."""
        return ApiKeys(self.token, self.named_tokens)

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> ServerConfig:
        url = _database_url(env)
        level = env.get("TETHER_LOG_LEVEL", "info").strip().lower()
        if level not in LOG_LEVELS:
            raise ConfigError(
                f"TETHER_LOG_LEVEL must be one of {', '.join(LOG_LEVELS)}, got {level!r}"
            )
        config = cls(
            database_url=url,
            bind=env.get("TETHER_BIND", "127.0.0.1").strip(),
            port=_port(env, "TETHER_PORT", DEFAULT_PORT),
            worker_port=_port(env, "TETHER_WORKER_PORT", DEFAULT_WORKER_PORT, allow_zero=True),
            token=env.get("TETHER_TOKEN") or None,
            allowed_hosts=_hosts(env, "TETHER_ALLOWED_HOSTS"),
            embed_workers=_whole(env, "TETHER_EMBED_WORKERS", 64),
            embed_cron=_flag(env, "TETHER_EMBED_CRON", True),
            shared=_flag(env, "TETHER_SHARED", False),
            ownership_ttl_ms=_whole(env, "TETHER_OWNERSHIP_TTL_MS", 10_000, minimum=300),
            log_level=level,
            max_body_bytes=_whole(env, "TETHER_MAX_BODY_BYTES", 1 << 20, minimum=1024),
            http_lease_ttl_ms=_whole(env, "TETHER_HTTP_LEASE_TTL_MS", 30_000, minimum=500),
            max_connections=_whole(env, "TETHER_MAX_CONNECTIONS", 1000, minimum=16),
            header_timeout_secs=_whole(env, "TETHER_HEADER_TIMEOUT_SECS", 10, minimum=1),
            keep_alive_secs=_whole(env, "TETHER_KEEP_ALIVE_SECS", 5, minimum=1),
            http_worker_queues=_names(env, "TETHER_HTTP_WORKER_QUEUES"),
            lease_key=env.get("TETHER_LEASE_KEY") or None,
            named_tokens=_named_tokens(env, "TETHER_TOKENS_FILE"),
            redact=_redact(env),
        )
        config.check()
        return config

    def check(self) -> None:
        """Refuse a configuration that would expose the API without a token, or with a weak one."""
        if self.lease_key is not None and len(self.lease_key) < MIN_LEASE_KEY_CHARS:
            raise ConfigError(
                f"TETHER_LEASE_KEY is {len(self.lease_key)} characters: use at least "
                f"{MIN_LEASE_KEY_CHARS} (python -c 'import secrets; "
                "print(secrets.token_urlsafe(32))')"
            )
        if self.token is not None:
            problem = token_shape_problem(self.token, "TETHER_TOKEN")
            if problem is not None:
                raise ConfigError(problem)
            if any(n.token == self.token for n in self.named_tokens):
                raise ConfigError(
                    "TETHER_TOKENS_FILE gives a user the TETHER_TOKEN itself: a named token "
                    "must be one only its user holds"
                )
        if not self.api_keys().required and not is_loopback(self.bind):
            raise ConfigError(
                f"TETHER_BIND={self.bind} listens beyond this machine: set TETHER_TOKEN (every "
                "request but /health must then send 'Authorization: Bearer <token>'), or bind "
                "127.0.0.1"
            )
        if self.shared and not self.database_url.startswith(POSTGRES_SCHEMES):
            raise ConfigError(
                "--shared (TETHER_SHARED) runs several engines on one Postgres database; the "
                "journal here is not one (a SQLite file has one engine): use postgresql://..."
            )
        if self.embed_workers == 0 and self.worker_port == 0:
            raise ConfigError(
                "TETHER_EMBED_WORKERS=0 and TETHER_WORKER_PORT=0 leave no worker to run any "
                "node: give one of them"
            )


def _database_url(env: Mapping[str, str]) -> str:
    """The journal's URL; the backend, unless TETHER_STORAGE_BACKEND names one, is the URL's."""
    url = journal_url(env.get("TETHER_DATABASE_URL", DEFAULT_DATABASE_URL))
    default = "postgres" if url.startswith(POSTGRES_SCHEMES) else "sqlite"
    backend = env.get("TETHER_STORAGE_BACKEND", "").strip().lower() or default
    if backend not in STORAGE_BACKENDS:
        raise ConfigError(
            f"TETHER_STORAGE_BACKEND must be one of {', '.join(STORAGE_BACKENDS)}, got {backend!r}"
        )
    if backend == "memory":
        return "memory://"
    if backend == "sqlite" and not url.startswith("sqlite:///"):
        raise ConfigError(
            "TETHER_DATABASE_URL must be a file path (data/runtime.db), "
            f"sqlite:///relative.db or sqlite:////abs.db, got {display_url(url)!r}"
        )
    if backend == "postgres" and not url.startswith(POSTGRES_SCHEMES):
        raise ConfigError(
            "TETHER_STORAGE_BACKEND=postgres needs TETHER_DATABASE_URL=postgresql://user@host/db,"
            f" got {display_url(url)!r}"
        )
    return url


def _redact(env: Mapping[str, str]) -> RedactPolicy | None:
    try:
        return policy_from_env(env)
    except RedactionSettingsError as exc:
        raise ConfigError(str(exc)) from None


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _port(env: Mapping[str, str], name: str, default: int, allow_zero: bool = False) -> int:
    value = _whole(env, name, default)
    low = 0 if allow_zero else 1
    if not low <= value <= 65535:
        raise ConfigError(f"{name} must be a port number ({low}-65535), got {value}")
    return value


def _whole(env: Mapping[str, str], name: str, default: int, minimum: int = 0) -> int:
    raw = env.get(name)
    if raw is None or not raw.strip():
        return default
    try:
        value = int(raw)
    except ValueError:
        raise ConfigError(f"{name} must be a whole number, got {raw!r}") from None
    if value < minimum:
        raise ConfigError(f"{name} must be at least {minimum}, got {value}")
    return value


def _hosts(env: Mapping[str, str], name: str) -> tuple[str, ...]:
    raw = env.get(name) or ""
    hosts = tuple(h.strip().lower() for h in raw.split(",") if h.strip())
    for host in hosts:
        if host != "*" and (any(c in host for c in "/@ \t") or not host.isascii()):
            raise ConfigError(
                f"{name} is a comma-separated list of host names (like api.example.com or "
                f"[::1]), got {host!r}"
            )
    return hosts


def _names(env: Mapping[str, str], name: str) -> frozenset[str] | None:
    raw = env.get(name)
    if raw is None or not raw.strip():
        return None
    names = frozenset(n.strip() for n in raw.split(","))
    if "" in names:
        raise ConfigError(f"{name} must be comma-separated names, got {raw!r}")
    return names


def _named_tokens(env: Mapping[str, str], name: str) -> tuple[NamedToken, ...]:
    path = env.get(name)
    if path is None or not path.strip():
        return ()
    try:
        with open(path.strip(), encoding="utf-8") as f:
            text = f.read()
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{name}={path}: cannot read it ({exc})") from None
    try:
        return parse_tokens_file(text, f"{name}={path.strip()}")
    except TokensFileError as exc:
        raise ConfigError(str(exc)) from None


def _flag(env: Mapping[str, str], name: str, default: bool) -> bool:
    raw = env.get(name)
    if raw is None or not raw.strip():
        return default
    value = raw.strip().lower()
    if value in ("1", "true", "yes", "on"):
        return True
    if value in ("0", "false", "no", "off"):
        return False
    raise ConfigError(f"{name} must be true or false, got {raw!r}")
