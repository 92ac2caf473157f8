"""Settings: the one place that reads the environment.

Everything else receives a :class:`Settings` instance. Read once with
:func:`load_settings`; the values are frozen.

Environment variables (all optional):

``CLAIMS_BOOTSTRAP_SERVERS``
    ``host:port[,host:port]`` of an existing Kafka cluster. When set, the
    pipeline and the tests use it and never start a broker of their own.
``CLAIMS_PROVIDER_DIRECTORY``
    A provider directory file (JSON): the billing provider of each organization or
    HL7 sending facility a feed names (``pipeline.ingest.directory``). Without it, an
    encounter whose organization carries no NPI is refused.
``CLAIMS_MEMBER_ROSTER``
    A member roster file (JSON): each patient's coverage by date (payer, member id,
    relationship), for feeds that send no Coverage (Synthea).
``CLAIMS_DATA_DIR``
    Folder for the local broker (jars cache, log, pid, storage) and worker
    state. Default ``.data`` in the project folder (an installed wheel:
    ``$XDG_DATA_HOME/claims-pipeline``, by default ``~/.local/share/claims-pipeline``).
``CLAIMS_BROKER_PORT``
    Port of the local broker (default 9092; its controller uses port + 1).
``CLAIMS_TOPIC_PREFIX``
    Prefix for every topic name, to run several pipelines on one cluster.
``CLAIMS_PARTITIONS``
    Partitions of the claim-path topics (default 4).
``CLAIMS_TOPOLOGY``
    ``staged`` (one faust agent per stage, default) or ``fused`` (one agent
    runs all stages per batch and still writes every stage's topic).
``CLAIMS_SEED``
    Seed of the payer simulator's deterministic noise (default 2026).
``CLAIMS_LOG_LEVEL``
    Log level of the workers (default info).
``CLAIMS_MAX_RECORD_BYTES``
    Largest record (key plus value) any stage, ingest adapter or state write
    may produce (default 1,000,000). Topics are created with a
    ``max.message.bytes`` and producers with a ``max_request_size`` derived
    from it (:func:`topic_max_message_bytes`), so one number sets every limit;
    a larger record is refused before it is sent and its input dead-lettered.
``CLAIMS_HTTP_MAX_BYTES``
    Largest request body ``POST /fhir`` reads (default 33,554,432, 32 MiB: real
    Synthea bundles run to several MB); a larger one is answered 413.
``CLAIMS_HTTP_MAX_ENTRIES``
    Most entries a bundle posted to ``POST /fhir`` may hold (default 20,000);
    more are answered 413.
``CLAIMS_HTTP_ACK_TIMEOUT``
    Seconds ``POST /fhir`` waits for Kafka to acknowledge a bundle's events
    (default 30); past it, or when a send fails, it answers 503 with
    Retry-After and accepts nothing.
``CLAIMS_MLLP_IDLE_TIMEOUT``
    Seconds an MLLP connection may stay silent between messages before the
    listener closes it (default 300).
``CLAIMS_MLLP_FRAME_TIMEOUT``
    Seconds a sender has to finish a frame it started (default 30); an
    unfinished frame is answered AR when its MSH-10 can be read, dead-lettered
    with the reason, and the connection closed.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from processors.refdata import RefData

SOURCE_ROOT = Path(__file__).resolve().parent.parent
# An installed wheel carries schemas/ and infra/ here (setup.py copies them in).
BUNDLED_ROOT = Path(__file__).resolve().parent / "_bundled"


def _project_root() -> Path:
    """Where schemas/ and infra/ are: the source checkout, or the copy in an installed wheel."""
    if (SOURCE_ROOT / "pyproject.toml").is_file() and (SOURCE_ROOT / "schemas").is_dir():
        return SOURCE_ROOT
    return BUNDLED_ROOT


PROJECT_ROOT = _project_root()
INSTALLED = PROJECT_ROOT == BUNDLED_ROOT


def default_data_dir(env: Mapping[str, str]) -> Path:
    """Where the broker's data and the Kafka jars go unless CLAIMS_DATA_DIR says otherwise.

    ``.data`` in a source checkout; for an installed wheel, the user's data
    folder (``$XDG_DATA_HOME/claims-pipeline``, by default
    ``~/.local/share/claims-pipeline``), never the installed package.
    """
    if not INSTALLED:
        return SOURCE_ROOT / ".data"
    home = env.get("XDG_DATA_HOME") or str(Path.home() / ".local" / "share")
    return Path(home) / "claims-pipeline"


TOPOLOGIES = ("staged", "fused")

DEFAULT_MAX_RECORD_BYTES = 1_000_000
# Room a record batch needs around one record (batch header, record framing, headers).
BATCH_OVERHEAD_BYTES = 16 * 1024


DEFAULT_HTTP_MAX_BYTES = 32 * 1024 * 1024
DEFAULT_HTTP_MAX_ENTRIES = 20_000


def topic_max_message_bytes(max_record_bytes: int) -> int:
    """``max.message.bytes`` of every topic, and the producers' ``max_request_size``."""
    return max_record_bytes + BATCH_OVERHEAD_BYTES


class SettingsError(ValueError):
    """A setting has a value the pipeline cannot use; the message says which and why."""


@dataclass(frozen=True)
class Settings:
    """Typed, frozen settings of one pipeline process."""

    bootstrap_servers: str | None
    data_dir: Path
    broker_port: int
    topic_prefix: str
    partitions: int
    topology: str
    seed: int
    log_level: str
    max_auto_resubmissions: int = 2
    payers_dir: Path | None = None
    provider_directory: Path | None = None
    member_roster: Path | None = None
    http_port: int = 0
    http_host: str = "127.0.0.1"
    metrics_port: int = 0
    max_record_bytes: int = DEFAULT_MAX_RECORD_BYTES
    http_max_bytes: int = DEFAULT_HTTP_MAX_BYTES
    http_max_entries: int = DEFAULT_HTTP_MAX_ENTRIES
    http_ack_timeout: int = 30
    mllp_idle_timeout: int = 300
    mllp_frame_timeout: int = 30

    @property
    def external_cluster(self) -> bool:
        """True when an existing cluster was named, so no local broker is managed."""
        return self.bootstrap_servers is not None

    @property
    def bootstrap(self) -> str:
        """The address clients connect to: the named cluster or the local broker."""
        return self.bootstrap_servers or f"127.0.0.1:{self.broker_port}"

    def refdata(self) -> RefData:
        """The reference data every entry point uses: the shipped tables, with the payer
        profiles of ``CLAIMS_PAYERS_DIR`` when it is set (loaded once per process)."""
        from processors.refdata import PAYERS_DIR, load_refdata  # noqa: PLC0415

        return load_refdata(self.payers_dir or PAYERS_DIR)

    def with_changes(self, **changes: object) -> Settings:
        """A copy with some values replaced (tests, benchmarks, replays)."""
        return replace(self, **changes)  # type: ignore[arg-type]


def _int(env: Mapping[str, str], name: str, default: int, minimum: int = 0) -> int:
    raw = env.get(name)
    if raw is None or raw == "":
        return default
    try:
        value = int(raw)
    except ValueError:
        raise SettingsError(f"{name}={raw!r} is not a whole number") from None
    if value < minimum:
        raise SettingsError(f"{name}={value} must be at least {minimum}")
    return value


def load_settings(env: Mapping[str, str] | None = None) -> Settings:
    """Read the settings from *env* (default: the process environment)."""
    env = os.environ if env is None else env
    topology = env.get("CLAIMS_TOPOLOGY", "staged") or "staged"
    if topology not in TOPOLOGIES:
        raise SettingsError(f"CLAIMS_TOPOLOGY={topology!r} is not one of {', '.join(TOPOLOGIES)}")
    data_dir = Path(env.get("CLAIMS_DATA_DIR") or default_data_dir(env)).resolve()
    return Settings(
        bootstrap_servers=env.get("CLAIMS_BOOTSTRAP_SERVERS") or None,
        data_dir=data_dir,
        broker_port=_int(env, "CLAIMS_BROKER_PORT", 9092, minimum=1),
        topic_prefix=env.get("CLAIMS_TOPIC_PREFIX", ""),
        partitions=_int(env, "CLAIMS_PARTITIONS", 4, minimum=1),
        topology=topology,
        seed=_int(env, "CLAIMS_SEED", 2026),
        log_level=env.get("CLAIMS_LOG_LEVEL", "info") or "info",
        max_auto_resubmissions=_int(env, "CLAIMS_MAX_AUTO_RESUBMISSIONS", 2),
        provider_directory=Path(env["CLAIMS_PROVIDER_DIRECTORY"]).resolve()
        if env.get("CLAIMS_PROVIDER_DIRECTORY")
        else None,
        member_roster=Path(env["CLAIMS_MEMBER_ROSTER"]).resolve()
        if env.get("CLAIMS_MEMBER_ROSTER")
        else None,
        payers_dir=Path(env["CLAIMS_PAYERS_DIR"]).resolve()
        if env.get("CLAIMS_PAYERS_DIR")
        else None,
        http_port=_int(env, "CLAIMS_HTTP_PORT", 0),
        http_host=env.get("CLAIMS_HTTP_HOST") or "127.0.0.1",
        metrics_port=_int(env, "CLAIMS_METRICS_PORT", 0),
        max_record_bytes=_int(
            env, "CLAIMS_MAX_RECORD_BYTES", DEFAULT_MAX_RECORD_BYTES, minimum=64 * 1024
        ),
        http_max_bytes=_int(env, "CLAIMS_HTTP_MAX_BYTES", DEFAULT_HTTP_MAX_BYTES, minimum=1024),
        http_max_entries=_int(env, "CLAIMS_HTTP_MAX_ENTRIES", DEFAULT_HTTP_MAX_ENTRIES, minimum=1),
        http_ack_timeout=_int(env, "CLAIMS_HTTP_ACK_TIMEOUT", 30, minimum=1),
        mllp_idle_timeout=_int(env, "CLAIMS_MLLP_IDLE_TIMEOUT", 300, minimum=1),
        mllp_frame_timeout=_int(env, "CLAIMS_MLLP_FRAME_TIMEOUT", 30, minimum=1),
    )


def to_env(settings: Settings) -> dict[str, str]:
    """Environment variables that make a child process load the same settings."""
    env = {
        "CLAIMS_DATA_DIR": str(settings.data_dir),
        "CLAIMS_BROKER_PORT": str(settings.broker_port),
        "CLAIMS_TOPIC_PREFIX": settings.topic_prefix,
        "CLAIMS_PARTITIONS": str(settings.partitions),
        "CLAIMS_TOPOLOGY": settings.topology,
        "CLAIMS_SEED": str(settings.seed),
        "CLAIMS_LOG_LEVEL": settings.log_level,
        "CLAIMS_MAX_AUTO_RESUBMISSIONS": str(settings.max_auto_resubmissions),
        "CLAIMS_MAX_RECORD_BYTES": str(settings.max_record_bytes),
        "CLAIMS_HTTP_MAX_BYTES": str(settings.http_max_bytes),
        "CLAIMS_HTTP_MAX_ENTRIES": str(settings.http_max_entries),
        "CLAIMS_HTTP_ACK_TIMEOUT": str(settings.http_ack_timeout),
        "CLAIMS_MLLP_IDLE_TIMEOUT": str(settings.mllp_idle_timeout),
        "CLAIMS_MLLP_FRAME_TIMEOUT": str(settings.mllp_frame_timeout),
    }
    if settings.bootstrap_servers:
        env["CLAIMS_BOOTSTRAP_SERVERS"] = settings.bootstrap_servers
    if settings.payers_dir:
        env["CLAIMS_PAYERS_DIR"] = str(settings.payers_dir)
    if settings.provider_directory:
        env["CLAIMS_PROVIDER_DIRECTORY"] = str(settings.provider_directory)
    if settings.member_roster:
        env["CLAIMS_MEMBER_ROSTER"] = str(settings.member_roster)
    if settings.http_port:
        env["CLAIMS_HTTP_PORT"] = str(settings.http_port)
    if settings.http_port or settings.metrics_port:
        env["CLAIMS_HTTP_HOST"] = settings.http_host
    if settings.metrics_port:
        env["CLAIMS_METRICS_PORT"] = str(settings.metrics_port)
    return env
