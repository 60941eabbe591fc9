"""Typed settings, and the one function that knows how to reach the database: `get_db_url()`."""

from __future__ import annotations

import json
import ssl
from functools import lru_cache
from pathlib import Path
from typing import Annotated, Any, Literal

import limits
from pydantic import Field, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict
from sqlalchemy.engine import URL, make_url

SslMode = Literal["disable", "require", "verify-ca", "verify-full"]

ASYNC_DRIVER = "postgresql+asyncpg"
# Schemes people paste from Render, Supabase or Heroku dashboards; all are served by asyncpg.
ACCEPTED_SCHEMES = frozenset(
    {"postgres", "postgresql", "postgresql+asyncpg", "postgresql+psycopg", "postgresql+psycopg2"}
)
# libpq-style query keys that asyncpg rejects in a URL; they are translated into `ssl=`.
SSL_QUERY_KEYS = ("sslmode", "sslrootcert", "ssl")
SUPABASE_POOLER_SUFFIX = ".pooler.supabase.com"
SUPABASE_PORTS = {"transaction": 6543, "session": 5432}
MIN_API_KEY_LENGTH = 16


class Settings(BaseSettings):
    """Service configuration, read from the environment and an optional `.env` file."""

    model_config = SettingsConfigDict(
        env_file=".env",
        env_file_encoding="utf-8",
        extra="ignore",
        frozen=True,
        hide_input_in_errors=True,  # validation errors must not echo DATABASE_URL
    )

    app_name: str = "{{ cookiecutter.project_name }}"
    """Shown in the API docs and sent to PostgreSQL as `application_name`."""
    environment: Literal["development", "test", "production"] = "development"
    """Where the service runs."""
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"
    """Root log level."""
    host: str = "127.0.0.1"
    """Interface uvicorn binds to (`0.0.0.0` in containers and on Render)."""
    port: int = Field(default=8000, ge=1, le=65535)
    """Port uvicorn binds to (Render sets `PORT`)."""
    web_concurrency: int = Field(default=1, ge=1)
    """Number of uvicorn worker processes; each has its own connection pool."""

    # Observability (docs/operations.md); traces read the standard `OTEL_*` variables instead.
    log_format: Literal["json", "console"] | None = None
    """`json` (one object a line) or `console` (readable); unset: json in production only."""
    metrics: Literal["on", "off", "token"] | None = None
    """`/metrics`: `on`, `off`, or `token` (needs `Authorization: Bearer <METRICS_TOKEN>`);
    unset: `token` when METRICS_TOKEN is set, else on, except in production (off)."""
    metrics_token: SecretStr | None = None
    """Bearer token Prometheus sends to `/metrics` (at least 16 characters)."""
    sentry_dsn: SecretStr | None = None
    """Sentry DSN; errors are reported to Sentry only when it is set."""

    @model_validator(mode="after")
    def _check_metrics(self) -> Settings:
        """Refuse `METRICS=token` without a token, and a token that is easy to guess."""
        token = self.metrics_token.get_secret_value() if self.metrics_token else ""
        if self.metrics == "token" and not token:
            raise ValueError("METRICS=token needs METRICS_TOKEN")
        if token and (len(token) < MIN_API_KEY_LENGTH or not token.isprintable() or " " in token):
            raise ValueError(
                f"METRICS_TOKEN needs at least {MIN_API_KEY_LENGTH} printable characters "
                "without spaces"
            )
        return self

    @property
    def metrics_mode(self) -> Literal["on", "off", "token"]:
        """How `/metrics` is served: `METRICS`, or its default for the environment."""
        if self.metrics is not None:
            return self.metrics
        if self.metrics_token is not None:
            return "token"
        return "off" if self.environment == "production" else "on"

    # The API's edge (docs/api.md)
    api_keys: Annotated[tuple[SecretStr, ...], NoDecode] = ()
    """Keys that clients send as `Authorization: Bearer <key>` or `X-API-Key: <key>`; several (a
    comma-separated or JSON list) allow rotation. Required outside `development`."""
    api_docs: bool | None = None
    """Serve `/docs`, `/redoc` and `/openapi.json`; unset: everywhere but in production."""
    cors_origins: Annotated[tuple[str, ...], NoDecode] = ()
    """Browser origins allowed to call the API (`https://app.example.com`); empty: no CORS."""
    trusted_hosts: Annotated[tuple[str, ...], NoDecode] = ()
    """Host names the service answers to (`api.example.com, *.example.com`); empty: any."""
    max_body_bytes: int = Field(default=1024 * 1024, ge=0)
    """Largest request body; a larger one gets 413 before it is read in full."""
    job_rate_limit: str = ""
    """Job submissions allowed per API key, e.g. `30/minute` or `100/hour`; empty: no limit."""

    @field_validator("api_keys", "cors_origins", "trusted_hosts", mode="before")
    @classmethod
    def _split_list(cls, value: Any) -> Any:
        """Accept a JSON list or comma-separated text (`a, b`), as an environment variable holds."""
        if isinstance(value, str):
            text = value.strip()
            items = json.loads(text) if text.startswith("[") else text.split(",")
            return tuple(str(item).strip() for item in items if str(item).strip())
        return value

    @field_validator("api_keys")
    @classmethod
    def _check_keys(cls, keys: tuple[SecretStr, ...]) -> tuple[SecretStr, ...]:
        """Refuse keys that are easy to guess or cannot travel in a header."""
        for key in keys:
            secret = key.get_secret_value()
            if len(secret) < MIN_API_KEY_LENGTH or not secret.isprintable() or " " in secret:
                raise ValueError(
                    f"every API key needs at least {MIN_API_KEY_LENGTH} printable characters "
                    "without spaces (make one: python -c 'import secrets; "
                    "print(secrets.token_urlsafe(32))')"
                )
        return keys

    @field_validator("job_rate_limit")
    @classmethod
    def _check_rate(cls, value: str) -> str:
        """Fail at start-up on a rate the limiter cannot read."""
        if value.strip():
            try:
                rate = limits.parse(value)
            except ValueError as exc:
                raise ValueError(
                    f"JOB_RATE_LIMIT={value!r} is not a rate such as '30/minute'"
                ) from exc
            if rate.amount < 1:
                raise ValueError("JOB_RATE_LIMIT allows no job at all; leave it empty for no limit")
        return value.strip()

    @property
    def api_keys_required(self) -> bool:
        """Whether mutating requests need a key: always, except in development without keys."""
        return bool(self.api_keys) or self.environment != "development"

    @property
    def api_docs_served(self) -> bool:
        """Whether the interactive docs and the OpenAPI schema are served."""
        return self.environment != "production" if self.api_docs is None else self.api_docs

    database_url: SecretStr | None = None
    """Full database URL; when set it wins over the parts below. `postgres://` is accepted."""
    db_host: str = "127.0.0.1"
    """Database host, used when `DATABASE_URL` is unset."""
    db_port: int = Field(default=5432, ge=1, le=65535)
    """Database port, used when `DATABASE_URL` is unset."""
    db_user: str = "postgres"
    """Database user, used when `DATABASE_URL` is unset."""
    db_password: SecretStr = SecretStr("")
    """Database password, used when `DATABASE_URL` is unset."""
    db_name: str = "postgres"
    """Database name, used when `DATABASE_URL` is unset."""
    migrations_database_url: SecretStr | None = None
    """URL for Alembic (session mode or direct host); falls back to the application URL."""

    supabase_project_ref: str | None = {% if cookiecutter.supabase_project_ref %}"{{ cookiecutter.supabase_project_ref }}"{% else %}None{% endif %}
    """Supabase project ref (20 letters); with `SUPABASE_POOLER_HOST` it builds the pooler URL."""
    supabase_pooler_host: str | None = None
    """Supabase pooler host, `aws-<N>-<region>.pooler.supabase.com` (copy it from the dashboard)."""
    supabase_pool_mode: Literal["transaction", "session"] = "transaction"
    """Supavisor mode: transaction (port 6543) for the app, session (port 5432) for migrations."""
    supabase_db_password: SecretStr | None = None
    """Database password of the Supabase project."""

    db_ssl_mode: SslMode = {{ ("require" if cookiecutter.database_provider == "supabase" else "disable") | tojson }}
    """`disable`, `require` (encrypted, unverified), `verify-ca` or `verify-full` (CA file)."""
    db_ssl_root_cert: Path | None = None
    """CA bundle for `verify-ca`/`verify-full` (Supabase: the certificate from the dashboard)."""

    db_pool_size: int = Field(default=5, ge=1)
    """Connections kept open per process."""
    db_max_overflow: int = Field(default=10, ge=0)
    """Extra connections a process may open under load."""
    db_pool_timeout: float = Field(default=30.0, gt=0)
    """Seconds a request waits for a free connection before failing."""
    db_pool_recycle: int = Field(default=1800, ge=-1)
    """Seconds after which a pooled connection is replaced (-1: never)."""
    db_pool_pre_ping: bool = True
    """Test each connection on checkout (`SELECT 1`, one round trip); survives pooler restarts."""
    db_connect_timeout: float = Field(default=10.0, gt=0)
    """Seconds to wait when opening a connection."""
    db_statement_timeout: float = Field(default=30.0, ge=0, le=2_147_483)  # PostgreSQL's max
    """Seconds one SQL statement may run (`SET LOCAL` in each transaction, pooler-safe); 0: none."""
    db_statement_cache: bool = False
    """asyncpg's named prepared statements (its statement cache); leave off behind any
    transaction-mode pooler."""
    db_echo: bool = False
    """Log every SQL statement (development only)."""
    db_session_guard: Literal["off", "log", "strict"] = "log"
    """Runtime session guard (docs/database.md): `log` warns once per site and counts in
    /metrics; `strict` also raises or records each violation (the tests); `off`."""
    db_slow_transaction_ms: int = Field(default=5000, ge=0)
    """The session guard reports a transaction open longer than this (milliseconds); 0: never."""

{%- if cookiecutter.task_engine != "none" %}
    task_broker: Literal["memory", "{{ cookiecutter.task_engine }}"] = "memory"
    """Where jobs run: `memory` (this process, nothing else needed) or `{{ cookiecutter.task_engine }}` (workers)."""
{%- endif %}
{%- if cookiecutter.task_engine == "redis" %}
    redis_url: SecretStr = SecretStr("redis://127.0.0.1:6379/0")
    """Redis for the `redis` task broker (a Redis Stream with acknowledgements)."""
{%- elif cookiecutter.task_engine == "rabbitmq" %}
    rabbitmq_url: SecretStr = SecretStr("amqp://guest:guest@127.0.0.1:5672/")
    """RabbitMQ for the `rabbitmq` task broker (a durable quorum queue with acknowledgements)."""
{%- endif %}
{%- if cookiecutter.task_engine != "none" %}
    task_queue_name: str = "jobs"
    """Name of the {{ "Redis Stream" if cookiecutter.task_engine == "redis" else "RabbitMQ queue (and its exchange)" }} the web processes and the workers share."""
{%- endif %}
    tasks_inline: bool = False
    """Run in-memory jobs inside the request that enqueues them (tests, debugging)."""
    job_concurrency: int = Field(default=4, ge=1, le=100)
    """Jobs one process runs at once; the rest wait their turn (4 fits a 512 MB instance)."""
    job_lease_seconds: float = Field(default=60.0, ge=1.0, le=3600.0)
    """Seconds a job stays claimed without a heartbeat; a dead owner's jobs are retried after."""
    job_max_attempts: int = Field(default=3, ge=1, le=100)
    """Starts a job gets before repeated interruptions (crashes, kills) mark it failed."""
    job_timeout_seconds: dict[str, float] = Field(default_factory=lambda: {"*": 3600.0})
    """Seconds one attempt of a job may run, per kind (`{"*": 3600, "sitemap": 7200}`); a number
    applies to every kind."""

    @field_validator("job_timeout_seconds", mode="before")
    @classmethod
    def _timeouts_by_kind(cls, value: Any) -> Any:
        """Accept one number for every kind, or a JSON object; require positive timeouts."""
        if isinstance(value, str):
            value = json.loads(value) if value.lstrip().startswith("{") else float(value)
        if isinstance(value, int | float) and not isinstance(value, bool):
            value = {"*": float(value)}
        if isinstance(value, dict) and any(float(seconds) <= 0 for seconds in value.values()):
            raise ValueError("job timeouts must be positive numbers of seconds")
        return value

    def job_timeout_for(self, kind: str) -> float:
        """Seconds one attempt of a job of `kind` may run."""
        return self.job_timeout_seconds.get(kind, self.job_timeout_seconds.get("*", 3600.0))

{%- if cookiecutter.include_sitemaps %}

    sitemap_max_depth: int = Field(default=3, ge=0, le=10)
    """How deep sitemap indexes may nest below the submitted sitemap."""
    sitemap_max_urls: int = Field(default=500_000, ge=1)
    """Page URLs one sitemap job may store (the per-job cap)."""
    sitemap_max_bytes: int = Field(default=50 * 1024 * 1024, ge=1)
    """Largest sitemap file downloaded (compressed or not); 50 MB uncompressed is the protocol's."""
    sitemap_batch_size: int = Field(default=5000, ge=1, le=20_000)
    """Page URLs stored per transaction (fewer, larger batches: less time per URL)."""
{%- endif %}
{%- if cookiecutter.include_pages %}

    pages_max_per_batch: int = Field(default=100, ge=1, le=100)
    """URLs one page-scraper batch may hold (422 beyond); 100 is the API schema's own limit."""
    pages_concurrency: int = Field(default=8, ge=1)
    """Pages fetched at once by one batch."""
    pages_per_host: int = Field(default=2, ge=1)
    """Pages fetched at once from one host."""
{%- endif %}

    @model_validator(mode="after")
    def _check_database(self) -> Settings:
        """Fail at start-up, with the fix, on a database configuration that cannot work."""
        self._check_url(self.get_db_url(), "DATABASE_URL")
        self._check_url(self.get_db_url(migrations=True), "MIGRATIONS_DATABASE_URL")
        self.get_db_connect_args()  # an unknown sslmode or unreadable CA file fails here
        return self

    @staticmethod
    def _check_url(url: URL, name: str) -> None:
        host = url.host or ""
        if host.endswith(SUPABASE_POOLER_SUFFIX) and not (url.username or "").startswith(
            "postgres."
        ):
            raise ValueError(
                f"{name} points at the Supabase pooler ({host}) with user {url.username!r}: "
                "the pooler needs the user 'postgres.<project-ref>', for example "
                "'postgres.abcdefghijklmnopqrst' (set SUPABASE_PROJECT_REF or fix the URL)"
            )

    def _raw_url(self, migrations: bool) -> URL:
        """The configured URL before SSL query keys are translated."""
        if migrations and self.migrations_database_url is not None:
            return self._parse(self.migrations_database_url, "MIGRATIONS_DATABASE_URL")
        if self.database_url is not None:
            return self._parse(self.database_url, "DATABASE_URL")
        if self.supabase_project_ref and self.supabase_pooler_host:
            password = self.supabase_db_password or self.db_password
            mode = "session" if migrations else self.supabase_pool_mode
            return URL.create(
                ASYNC_DRIVER,
                username=f"postgres.{self.supabase_project_ref}",
                password=password.get_secret_value() or None,
                host=self.supabase_pooler_host,
                port=SUPABASE_PORTS[mode],
                database="postgres",
            )
        return URL.create(
            ASYNC_DRIVER,
            username=self.db_user,
            password=self.db_password.get_secret_value() or None,
            host=self.db_host,
            port=self.db_port,
            database=self.db_name,
        )

    @staticmethod
    def _parse(secret: SecretStr, name: str) -> URL:
        try:
            url = make_url(secret.get_secret_value())
        except Exception as exc:  # the message would echo the secret; name the setting instead
            raise ValueError(f"{name} is not a valid database URL") from exc
        if url.drivername not in ACCEPTED_SCHEMES:
            raise ValueError(
                f"{name} has scheme {url.drivername!r}: use postgresql:// (served by asyncpg)"
            )
        return url.set(drivername=ASYNC_DRIVER)

    def _ssl_mode(self, raw: URL) -> SslMode:
        value = raw.query.get("sslmode") or raw.query.get("ssl")
        if value is None:
            return self.db_ssl_mode
        mode = value if isinstance(value, str) else value[-1]
        aliases: dict[str, SslMode] = {
            "disable": "disable",
            "allow": "disable",
            "prefer": "require",
            "require": "require",
            "verify-ca": "verify-ca",
            "verify-full": "verify-full",
        }
        if mode not in aliases:
            raise ValueError(f"sslmode={mode!r} is not one of {', '.join(aliases)}")
        return aliases[mode]

    def _root_cert(self, raw: URL) -> Path | None:
        value = raw.query.get("sslrootcert")
        if value is None:
            return self.db_ssl_root_cert
        return Path(value if isinstance(value, str) else value[-1])

    @property
    def database_configured(self) -> bool:
        """Whether a database was configured (URL, host or Supabase pooler), not only defaulted."""
        return bool(self.model_fields_set & {"database_url", "db_host", "supabase_pooler_host"})

    def get_db_url(self, *, migrations: bool = False) -> URL:
        """Return the one database URL (asyncpg driver, SSL query keys removed)."""
        return self._raw_url(migrations).difference_update_query(SSL_QUERY_KEYS)

    def get_db_ssl_mode(self, *, migrations: bool = False) -> SslMode:
        """Return the SSL mode in effect: the URL's `sslmode=` if present, else `DB_SSL_MODE`."""
        return self._ssl_mode(self._raw_url(migrations))

    def get_db_connect_args(self, *, migrations: bool = False) -> dict[str, Any]:
        """Return asyncpg connect arguments: pooler-safe caches, SSL, timeouts."""
        raw = self._raw_url(migrations)
        args: dict[str, Any] = {
            "ssl": self._ssl_context(self._ssl_mode(raw), self._root_cert(raw)),
            "timeout": self.db_connect_timeout,
            "server_settings": {"application_name": self.app_name[:63]},
        }
        if not self.db_statement_cache:
            # Named prepared statements break behind transaction-mode poolers (Supavisor,
            # pgbouncer). With asyncpg's statement cache off (>= 0.31) every statement is
            # unnamed and each execution sends its text again (Parse, Bind, Execute, Sync in
            # one message batch), so nothing of it outlives the transaction on the server.
            # SQLAlchemy's cache (`prepared_statement_cache_size`, left on) keeps only what
            # the server described of each statement, per connection: one round trip and
            # the description's decoding saved on every later execution (docs/database.md).
            args["statement_cache_size"] = 0
        return args

    @staticmethod
    def _ssl_context(mode: SslMode, root_cert: Path | None) -> ssl.SSLContext | str | bool:
        if mode == "disable":
            return False
        if mode == "require":
            return "require"  # encrypted, certificate not verified (asyncpg's libpq semantics)
        context = ssl.create_default_context(cafile=str(root_cert) if root_cert else None)
        context.check_hostname = mode == "verify-full"
        return context

    # Outbound HTTP
    outbound_allowlist: str = ""
    """Hosts or CIDRs outbound requests may reach despite the SSRF guard (`example.com, ::1`)."""
    outbound_timeout: float = Field(default=10.0, gt=0)
    """Seconds for each network step of an outbound request (a whole fetch gets three times)."""
    outbound_max_bytes: int = Field(default=10 * 1024 * 1024, ge=1)
    """Largest response body an outbound request accepts, in bytes."""
    outbound_max_redirects: int = Field(default=5, ge=0)
    """Redirects an outbound request follows, each hop checked by the SSRF guard."""
    outbound_user_agent: str = "{{ cookiecutter.project_slug }}/0.1"
    """User-Agent of outbound requests, also the name matched against robots.txt."""

{%- if cookiecutter.include_places %}

    # Google Places
    google_places_api_key: SecretStr | None = None
    """API key for the Places API (New); searches are refused while it is unset."""
    google_places_base_url: str = "https://places.googleapis.com"
    """Base URL of the Places API (tests point it at a local fake)."""
    google_places_max_pages: int = Field(default=3, ge=1)
    """Result pages a Text Search follows through `nextPageToken` (up to 20 places each)."""
{%- endif %}


@lru_cache
def get_settings() -> Settings:
    """Return the process-wide settings, read once."""
    return Settings()
