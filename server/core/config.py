"""Server settings, read once from `NAHBAR_*` environment variables (or a .env file)."""

from __future__ import annotations

import ipaddress
from functools import lru_cache
from typing import Annotated, Any, Literal, Self
from urllib.parse import urlsplit

from pydantic import Field, IPvAnyNetwork, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from server.core.const import CLAIMS_PER_SENDER, LEASE_MARGIN_S, PUSH_CONNECT_TIMEOUT_S

PLACEHOLDER_SECRET = "dev-only-change-me"  # noqa: S105 - refused outside development


def longest_push_s(push_timeout_s: float) -> float:
    """The longest one push request waits on its push service: connecting, then the answer."""
    return min(push_timeout_s, PUSH_CONNECT_TIMEOUT_S) + push_timeout_s


def shortest_lease_s(push_timeout_s: float) -> float:
    """A claimed send may wait for a sender's push, then make its own, then be recorded: the lease must
    outlast that, or another turn claims it again and a slow push service gets every prompt twice or more."""
    return CLAIMS_PER_SENDER * longest_push_s(push_timeout_s) + LEASE_MARGIN_S


class Settings(BaseSettings):
    """Everything an operator can set; see the configuration table in README.md."""

    model_config = SettingsConfigDict(env_prefix="NAHBAR_", env_file=".env", extra="ignore")

    environment: Literal["development", "production", "test"] = "development"
    database_url: str = "sqlite:///var/nahbar.db"
    secret_key: SecretStr = SecretStr(PLACEHOLDER_SECRET)
    public_url: str = "http://127.0.0.1:8000"
    vapid_private_key: SecretStr | None = None
    vapid_public_key: str | None = None
    vapid_subject: str | None = None  # mailto: or https: contact of the operator, sent to push services
    push_ttl_seconds: int = Field(default=600, ge=0, le=86_400)  # how long a push service may hold a prompt
    # Web Push endpoints on loopback or private addresses (a local push service in tests and the demo); off,
    # such endpoints are refused at registration and at every connection (server-side request forgery).
    allow_private_push_hosts: bool = False
    # Webhooks to charities' own systems: the same guard, its own switch (tests run local receivers).
    allow_private_webhook_hosts: bool = False
    # How long a webhook receiver may take to answer (and, up to 5 s of it, to accept the connection).
    webhook_timeout_seconds: float = Field(default=10.0, gt=0, le=30)
    # Requests for a charity's open data per minute from one client address (per process).
    open_data_per_minute_per_client: int = Field(default=30, ge=1, le=10_000)
    # FCM HTTP v1: a service-account JSON key (its token_uri is where the OAuth token is fetched).
    fcm_service_account_file: str | None = None
    fcm_project_id: str | None = None  # defaults to the service account's project_id
    fcm_base_url: str = "https://fcm.googleapis.com"
    # APNs: a token-based (.p8) provider key.
    apns_key_file: str | None = None
    apns_key_id: str | None = None
    apns_team_id: str | None = None
    apns_topic: str | None = None  # the app's bundle id
    apns_production_url: str = "https://api.push.apple.com"
    apns_sandbox_url: str = "https://api.sandbox.push.apple.com"
    # How long a push service may take to answer one request (and, up to 5 s, to accept the connection).
    push_timeout_seconds: float = Field(default=10.0, gt=0, le=60)
    # A claimed send is retried after this: at least shortest_lease_s(push_timeout_seconds).
    delivery_lease_seconds: int = Field(default=60, ge=1, le=600)
    landing_ttl_seconds: int = Field(default=86_400, ge=60, le=30 * 86_400)  # how long /p/{token} works
    retention_days: int = Field(default=14, ge=1, le=365)
    eid_rotation_exponent: int = Field(default=10, ge=0, le=15)
    prompt_ttl_seconds: int = Field(default=600, ge=30, le=86_400)
    visit_gap_seconds: int = Field(default=120, ge=10, le=3_600)
    max_request_bytes: int = Field(default=1_048_576, ge=1_024)
    # Abuse limits for the phone API; the buckets are per process (see server/api/ratelimit.py).
    optin_per_hour_per_client: int = Field(default=10, ge=1, le=100_000)
    sightings_per_minute_per_device: int = Field(default=30, ge=1, le=10_000)
    rate_limit_max_keys: int = Field(default=100_000, ge=100, le=10_000_000)
    # Where the limits are counted (server/limits/buckets.py). auto: Redis when redis_url is set, else the
    # database on PostgreSQL (all workers and machines together), else this process's memory (SQLite).
    rate_limit_store: Literal["auto", "memory", "database", "redis"] = "auto"
    redis_url: SecretStr | None = None  # redis://[:password@]host:6379/0; may hold a password
    redis_prefix: str = Field(default="nahbar:", max_length=64)  # for a Redis shared with other services
    # Peers whose X-Forwarded-For is believed (IPs or CIDRs, comma-separated); empty: none is.
    trusted_proxies: Annotated[list[IPvAnyNetwork], NoDecode] = Field(default_factory=list)
    # Requests one worker handles at once (the rest wait up to request_queue_seconds, then get 503); below
    # the thread pool's 40 threads, see server/api/admission.py. Each worker keeps this many database
    # connections plus 8 for its background work (12 at peak).
    max_concurrent_requests: int = Field(default=24, ge=1, le=32)
    request_queue_seconds: float = Field(default=5.0, gt=0, le=60)
    # How long a stopping worker lets the requests under way finish before it closes their connections.
    shutdown_timeout_seconds: int = Field(default=10, ge=1, le=300)
    scheduler_enabled: bool = True  # background jobs (EID rotation, retention purge) in this process
    # Bearer token for GET /metrics (Prometheus); unset, /metrics answers 404.
    metrics_token: SecretStr | None = None
    log_level: str = "INFO"
    log_format: Literal["json", "console"] = "json"
    # A client's address is personal data: the access log leaves it out unless the operator needs it.
    log_client_addresses: bool = False
    # Admin sign-in. Unset, cookies are Secure except for a development server on http://127.0.0.1 or
    # localhost (browsers drop Secure cookies over plain http, so nobody could log in there).
    cookie_secure: bool = True
    session_lifetime_seconds: int = Field(default=12 * 3600, ge=300, le=30 * 86_400)
    login_window_seconds: int = Field(default=15 * 60, ge=60, le=86_400)  # failures older are forgotten
    max_failures_per_account: int = Field(default=5, ge=1, le=1_000)  # per e-mail, within the window
    max_failures_per_client: int = Field(default=20, ge=1, le=100_000)  # per client address, in the window
    # E-mail for alerts to organisations' owners (server/alerts); unset host: no e-mail, a warning once.
    smtp_host: str | None = None
    smtp_port: int = Field(default=587, ge=1, le=65_535)
    smtp_username: str | None = None
    smtp_password: SecretStr | None = None
    # STARTTLS before anything else; on, a server that does not offer it gets no mail (never in clear).
    smtp_starttls: bool = True
    smtp_from: str | None = None  # the From address, e.g. "Nahbar <alerts@your.org>"
    # Alerts: a gateway silent (no heartbeat) or with a failing scanner this long; a site beacon whose
    # battery reports less than this; a site beacon not heard for this long.
    alert_gateway_minutes: int = Field(default=30, ge=1, le=7 * 24 * 60)
    alert_battery_mv: int = Field(default=2_500, ge=0, le=10_000)
    alert_beacon_unheard_hours: int = Field(default=24, ge=1, le=30 * 24)

    @field_validator("trusted_proxies", mode="before")
    @classmethod
    def _split_proxies(cls, value: Any) -> Any:
        if isinstance(value, str):
            return [part.strip() for part in value.split(",") if part.strip()]
        return value

    @field_validator("metrics_token")
    @classmethod
    def _unguessable(cls, value: SecretStr | None) -> SecretStr | None:
        if value is not None and len(value.get_secret_value()) < 16:
            raise ValueError(
                "NAHBAR_METRICS_TOKEN must be at least 16 random characters (for example: python -c "
                "'import secrets; print(secrets.token_urlsafe(32))')"
            )
        return value

    @field_validator("vapid_subject")
    @classmethod
    def _real_contact(cls, value: str | None) -> str | None:
        # Push services (Apple's among them) refuse a subject they cannot reach: a mailto: on localhost.
        if value is None:
            return value
        if value.startswith("mailto:"):
            domain = value.removeprefix("mailto:").rpartition("@")[2].lower()
            if (
                not domain
                or domain in {"localhost", "localhost.localdomain"}
                or domain.endswith((".localhost", ".local", ".test", ".invalid"))
            ):
                raise ValueError("NAHBAR_VAPID_SUBJECT must be a reachable contact (mailto:push@your.org)")
        elif not value.startswith("https://"):
            raise ValueError("NAHBAR_VAPID_SUBJECT must start with mailto: or https://")
        return value

    @model_validator(mode="after")
    def _refuse_placeholder_secrets(self) -> Self:
        # The key seals identity keys and derives landing tokens and pseudonyms: with the placeholder, they
        # are the same in every deployment that kept it. Only development on one's own machine may.
        secret = self.secret_key.get_secret_value()
        if self.environment != "development" and (secret == PLACEHOLDER_SECRET or len(secret) < 32):
            raise ValueError(
                "NAHBAR_SECRET_KEY must be set to a random value of at least 32 characters when "
                f"NAHBAR_ENVIRONMENT is {self.environment} (for example: python -c 'import secrets; "
                "print(secrets.token_urlsafe(48))'); the placeholder is for development on this machine only"
            )
        return self

    @property
    def has_placeholder_secret(self) -> bool:
        return self.secret_key.get_secret_value() == PLACEHOLDER_SECRET

    @model_validator(mode="after")
    def _lease_outlasts_a_push(self) -> Self:
        shortest = shortest_lease_s(self.push_timeout_seconds)
        if self.delivery_lease_seconds < shortest:
            connect = min(self.push_timeout_seconds, PUSH_CONNECT_TIMEOUT_S)
            raise ValueError(
                f"NAHBAR_DELIVERY_LEASE_SECONDS ({self.delivery_lease_seconds}) must be at least "
                f"{shortest:g} with NAHBAR_PUSH_TIMEOUT_SECONDS at {self.push_timeout_seconds:g}: a claimed "
                f"send may wait for another push and then make its own ({connect:g} s to connect, "
                f"{self.push_timeout_seconds:g} s for the answer, each), and a lease that ends first sends "
                "every slow push again. Raise the lease or lower the push timeout."
            )
        return self

    @model_validator(mode="after")
    def _smtp_complete(self) -> Self:
        if self.smtp_host and not self.smtp_from:
            raise ValueError(
                "NAHBAR_SMTP_FROM must be set with NAHBAR_SMTP_HOST: the address alert e-mails come from "
                "(for example: Nahbar <alerts@your.org>)"
            )
        if bool(self.smtp_username) != (self.smtp_password is not None):
            raise ValueError("NAHBAR_SMTP_USERNAME and NAHBAR_SMTP_PASSWORD go together: set both or neither")
        return self

    @property
    def smtp_enabled(self) -> bool:
        return bool(self.smtp_host)

    @model_validator(mode="after")
    def _cookie_secure_default(self) -> Self:
        if "cookie_secure" not in self.model_fields_set:
            url = urlsplit(self.public_url)
            local = url.scheme == "http" and url.hostname in {"127.0.0.1", "localhost"}
            self.cookie_secure = not (self.environment == "development" and local)
        return self

    @model_validator(mode="after")
    def _redis_needs_url(self) -> Self:
        if self.rate_limit_store == "redis" and self.redis_url is None:
            raise ValueError("NAHBAR_RATE_LIMIT_STORE is redis: set NAHBAR_REDIS_URL (redis://host:6379/0)")
        return self

    @property
    def is_sqlite(self) -> bool:
        return self.database_url.startswith("sqlite")


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    """The process-wide settings (tests build their own `Settings` and pass them to `create_app`)."""
    return Settings()


def serving_refusal(settings: Settings, host: str) -> str | None:
    """Why `nahbar serve` must not start on `host` with these settings, or None.

    The settings already refuse the placeholder secret outside development; a development server that other
    machines can reach would hand them tokens and pseudonyms anyone with the source can forge, so it is
    refused too."""
    if not settings.has_placeholder_secret or _loopback(host):
        return None
    return (
        f"NAHBAR_SECRET_KEY is the development placeholder, and --host {host} lets other machines connect; "
        "set NAHBAR_SECRET_KEY to a random value (python -c 'import secrets; "
        "print(secrets.token_urlsafe(48))') or serve on 127.0.0.1"
    )


def _loopback(host: str) -> bool:
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False  # a name other than localhost may resolve to any address
