"""faust's own environment variables, kept from overriding the pipeline's settings.

faust reads settings from environment variables named without any prefix of
ours, and a value found there wins over the argument the app was built with:
building an app's settings it reads the names in :data:`FAUST_SETTING_NAMES`
(``BROKER_URL``, ``BROKER_CREDENTIALS``, ``APP_STORE``, ``WEB_PORT``,
``TOPIC_PARTITIONS`` ..., each behind ``APP_ENV_PREFIX`` and an underscore when
that is set), and importing faust reads ``FAUST_*`` and ``F_*`` names
(``F_LOOP`` swaps the event loop; ``F_DATADIR``, ``F_WEB_PORT``,
``F_BLOCKING_TIMEOUT`` ...). A stray ``BROKER_URL`` would send a worker to
another cluster, and ``BROKER_CREDENTIALS`` set to a string makes faust raise an
error that quotes it.

The pipeline's settings come from ``CLAIMS_*`` only (:mod:`pipeline.config`):
:func:`pipeline.runtime.app.build_app` gives faust an empty environment, and a worker
removes faust's names from its own environment with :func:`scrub_faust_env`
before it imports faust, warning with each name, never its value.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping, MutableMapping

log = logging.getLogger(__name__)

# Every env_name of faust's settings (faust/types/settings/settings.py, faust-streaming 0.15);
# a unit test checks the list against the installed faust.
FAUST_SETTING_NAMES = frozenset(
    {
        "AEROSPIKE_RETRIES_ON_EXCEPTION",
        "AEROSPIKE_SLEEP_SECONDS_BETWEEN_RETRIES_ON_EXCEPTION",
        "AGENT_SUPERVISOR",
        "APP_DATADIR",
        "APP_DEBUG",
        "APP_ENV_PREFIX",
        "APP_ID_FORMAT",
        "APP_KEY_SERIALIZER",
        "APP_REPLY_CREATE_TOPIC",
        "APP_REPLY_EXPIRES",
        "APP_REPLY_TO_PREFIX",
        "APP_STORE",
        "APP_TABLEDIR",
        "APP_VALUE_SERIALIZER",
        "APP_VERSION",
        "APP_WEB_ENABLED",
        "APP_WEB_GRAPH_ENABLED",
        "APP_WEB_METRICS_ENABLED",
        "APP_WEB_ROUTER_ENABLED",
        "APP_WEB_STATS_ENABLED",
        "APP_WEB_TABLES_ENABLED",
        "BLOCKING_TIMEOUT",
        "BROKER_API_VERSION",
        "BROKER_CHECK_CRCS",
        "BROKER_CLIENT_ID",
        "BROKER_COMMIT_EVERY",
        "BROKER_COMMIT_INTERVAL",
        "BROKER_COMMIT_LIVELOCK_SOFT_TIMEOUT",
        "BROKER_CONSUMER_URL",
        "BROKER_CREDENTIALS",
        "BROKER_HEARTBEAT_INTERVAL",
        "BROKER_MAX_POLL_INTERVAL",
        "BROKER_MAX_POLL_RECORDS",
        "BROKER_PRODUCER_URL",
        "BROKER_REBALANCE_TIMEOUT",
        "BROKER_REQUEST_TIMEOUT",
        "BROKER_SESSION_TIMEOUT",
        "BROKER_URL",
        "CACHE_URL",
        "CONSUMER_API_VERSION",
        "CONSUMER_AUTO_OFFSET_RESET",
        "CONSUMER_CONNECTIONS_MAX_IDLE_MS",
        "CONSUMER_GROUP_INSTANCE_ID",
        "CONSUMER_MAX_FETCH_SIZE",
        "CONSUMER_METADATA_MAX_AGE_MS",
        "CRASH_APP_ON_AEROSPIKE_EXCEPTION",
        "CYTHON_OPTIMIZATIONS",
        "NODE_CANONICAL_URL",
        "PROCESSING_GUARANTEE",
        "PRODUCER_ACKS",
        "PRODUCER_API_VERSION",
        "PRODUCER_COMPRESSION_TYPE",
        "PRODUCER_CONNECTIONS_MAX_IDLE_MS",
        "PRODUCER_LINGER",
        "PRODUCER_LINGER_MS",
        "PRODUCER_MAX_BATCH_SIZE",
        "PRODUCER_MAX_REQUEST_SIZE",
        "PRODUCER_METADATA_MAX_AGE_MS",
        "PRODUCER_REQUEST_TIMEOUT",
        "PRODUCER_THREADED",
        "RECOVERY_CONSISTENCY_CHECK",
        "STORE_CHECK_EXISTS",
        "STREAM_BUFFER_MAXSIZE",
        "STREAM_PROCESSING_TIMEOUT",
        "STREAM_RECOVERY_DELAY",
        "STREAM_WAIT_EMPTY",
        "TABLE_CLEANUP_INTERVAL",
        "TABLE_KEY_INDEX_SIZE",
        "TABLE_STANDBY_REPLICAS",
        "TIMEZONE",
        "TOPIC_ALLOW_DECLARE",
        "TOPIC_DISABLE_LEADER",
        "TOPIC_PARTITIONS",
        "TOPIC_REPLICATION_FACTOR",
        "WEB_BIND",
        "WEB_HOST",
        "WEB_PORT",
        "WORKER_REDIRECT_STDOUTS",
        "WORKER_REDIRECT_STDOUTS_LEVEL",
    }
)
ENV_PREFIX_NAME = "APP_ENV_PREFIX"
# faust/types/_env.py and faust/__init__.py read these prefixes when faust is imported.
IMPORT_PREFIXES = ("FAUST_", "F_")


def faust_env_names(env: Mapping[str, str]) -> list[str]:
    """The names set in *env* that faust would read, sorted."""
    prefix = env.get(ENV_PREFIX_NAME)
    prefixed = {f"{prefix.rstrip('_')}_{name}" for name in FAUST_SETTING_NAMES} if prefix else set()
    return sorted(
        name
        for name in env
        if name in FAUST_SETTING_NAMES or name in prefixed or name.startswith(IMPORT_PREFIXES)
    )


def scrub_faust_env(env: MutableMapping[str, str] | None = None) -> list[str]:
    """Remove faust's own variables from *env* (default: this process's); returns their names.

    Logs a warning naming each one; a value is never logged (it may be a credential).
    """
    env = os.environ if env is None else env
    names = faust_env_names(env)
    for name in names:
        del env[name]
        log.warning(
            "%s is set in the environment; faust would read it over the pipeline's "
            "settings, so it is ignored (the pipeline reads only CLAIMS_* settings)",
            name,
        )
    return names
