"""faust's own environment variables never override the pipeline's settings or show a secret."""

from __future__ import annotations

import logging
import os
import subprocess
import sys
from pathlib import Path

import faust
import pytest
from yarl import URL

from pipeline.config import load_settings
from pipeline.runtime.faust_env import FAUST_SETTING_NAMES, faust_env_names, scrub_faust_env

CREDENTIALS_VALUE = "hunter2-do-not-print"
PROJECT = Path(__file__).resolve().parents[2]


def test_the_names_are_every_environment_variable_faust_settings_read() -> None:
    """The list is exactly the env names of the installed faust's settings (an upgrade that
    adds one fails here)."""
    from faust.types.settings.settings import Settings

    read = {p.env_name for p in Settings.SETTINGS.values() if p.env_name}
    assert read == FAUST_SETTING_NAMES
    assert {"BROKER_URL", "BROKER_CREDENTIALS", "APP_STORE", "WEB_PORT"} <= read


def test_scrub_removes_faust_names_warns_by_name_and_keeps_the_rest(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """faust's names (plain, behind APP_ENV_PREFIX, F_ and FAUST_) go, each named in a warning
    without its value; CLAIMS_ settings and unrelated variables stay."""
    env = {
        "BROKER_URL": "kafka://elsewhere:9092",
        "BROKER_CREDENTIALS": CREDENTIALS_VALUE,
        "APP_ENV_PREFIX": "MYAPP",
        "MYAPP_TOPIC_PARTITIONS": "99",
        "F_LOOP": "eventlet",
        "FAUST_DATADIR": "/tmp/x",
        "CLAIMS_BOOTSTRAP_SERVERS": "127.0.0.1:9092",
        "PATH": "/usr/bin",
        "BROKERAGE": "not faust's",
        "MY_TOPIC_PARTITIONS": "3",
    }
    with caplog.at_level(logging.WARNING, logger="pipeline.runtime.faust_env"):
        removed = scrub_faust_env(env)
    assert removed == [
        "APP_ENV_PREFIX",
        "BROKER_CREDENTIALS",
        "BROKER_URL",
        "FAUST_DATADIR",
        "F_LOOP",
        "MYAPP_TOPIC_PARTITIONS",
    ]
    assert env == {
        "CLAIMS_BOOTSTRAP_SERVERS": "127.0.0.1:9092",
        "PATH": "/usr/bin",
        "BROKERAGE": "not faust's",
        "MY_TOPIC_PARTITIONS": "3",
    }
    warned = [r.getMessage() for r in caplog.records]
    assert len(warned) == len(removed)
    assert all(any(name in w for w in warned) for name in removed)
    assert CREDENTIALS_VALUE not in caplog.text
    assert "elsewhere" not in caplog.text
    assert faust_env_names(env) == []


def test_the_app_ignores_faust_env_vars_and_never_reads_the_credentials(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """With BROKER_URL, BROKER_CREDENTIALS (a string faust would raise on, quoting it),
    APP_STORE, TOPIC_PARTITIONS and PRODUCER_ACKS set, the app is built from our settings."""
    from pipeline.runtime.app import SESSION_TIMEOUT_S, build_app

    for name, value in {
        "BROKER_URL": "kafka://elsewhere:1",
        "BROKER_CREDENTIALS": CREDENTIALS_VALUE,
        "APP_STORE": "rocksdb://",
        "TOPIC_PARTITIONS": "99",
        "PRODUCER_ACKS": "0",
        "BROKER_SESSION_TIMEOUT": "999",
    }.items():
        monkeypatch.setenv(name, value)
    settings = load_settings(
        {"CLAIMS_DATA_DIR": str(tmp_path), "CLAIMS_BROKER_PORT": "19092", "CLAIMS_PARTITIONS": "3"}
    )
    conf = build_app(settings).conf
    assert conf.broker == [URL("kafka://127.0.0.1:19092")]
    assert conf.broker_credentials is None
    assert conf.store == URL("memory://")
    assert conf.topic_partitions == 3
    assert conf.producer_acks == -1
    assert conf.broker_session_timeout == SESSION_TIMEOUT_S != 999
    # What the worker would have met without the empty environment: an error quoting it.
    with pytest.raises(faust.exceptions.ImproperlyConfigured) as raised:
        _ = faust.App("unguarded", broker="kafka://127.0.0.1:19092").conf
    assert CREDENTIALS_VALUE in str(raised.value)


def test_a_worker_process_scrubs_before_faust_reads_its_import_time_names() -> None:
    """The worker command imports faust only after scrubbing, so F_ names faust reads at import
    (F_WEB_PORT, F_BLOCKING_TIMEOUT) are gone by then; stderr names them, never a value."""
    code = (
        "import sys, pipeline.cli.main, pipeline.runtime.worker; "
        "assert 'faust' not in sys.modules; "
        "from pipeline.runtime.faust_env import scrub_faust_env; scrub_faust_env(); "
        "import faust.types._env as e; print(e.WEB_PORT, e.BLOCKING_TIMEOUT)"
    )
    env = {
        **os.environ,
        "F_WEB_PORT": "4321",
        "F_BLOCKING_TIMEOUT": "0.001",
        "BROKER_CREDENTIALS": CREDENTIALS_VALUE,
    }
    done = subprocess.run(
        [sys.executable, "-c", code],
        env=env,
        cwd=PROJECT,
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    assert done.stdout.split() == ["6066", "10.0"]
    for name in ("F_WEB_PORT", "F_BLOCKING_TIMEOUT", "BROKER_CREDENTIALS"):
        assert name in done.stderr
    assert CREDENTIALS_VALUE not in done.stderr + done.stdout
    assert "4321" not in done.stderr
