"""The local broker's configuration: server.properties rendering and file layout."""

from __future__ import annotations

from pathlib import Path

import pytest

from pipeline.config import load_settings
from pipeline.kafka.broker import (
    DEFAULT_JARS_DIR,
    SERVER_PROPERTIES_TEMPLATE,
    BrokerError,
    LocalBroker,
    render_server_properties,
)


def properties(text: str) -> dict[str, str]:
    """Parse the key=value lines of a rendered properties file."""
    pairs = (line.split("=", 1) for line in text.splitlines() if line and line[0] not in "#!")
    return {key.strip(): value.strip() for key, value in pairs}


class TestRenderServerProperties:
    def test_listeners_use_the_broker_and_controller_ports(self):
        """Clients get the broker port and the KRaft quorum the controller port."""
        text = SERVER_PROPERTIES_TEMPLATE.read_text(encoding="utf-8")
        props = properties(render_server_properties(text, 29092, 29093, Path("/data/storage")))
        assert props["listeners"] == ("PLAINTEXT://127.0.0.1:29092,CONTROLLER://127.0.0.1:29093")
        assert props["advertised.listeners"] == "PLAINTEXT://127.0.0.1:29092"
        assert props["controller.quorum.voters"] == "1@127.0.0.1:29093"

    def test_log_dirs_is_the_storage_folder(self):
        """The broker keeps its partitions in the folder it is given."""
        text = SERVER_PROPERTIES_TEMPLATE.read_text(encoding="utf-8")
        props = properties(render_server_properties(text, 29092, 29093, Path("/data/storage")))
        assert props["log.dirs"] == "/data/storage"

    def test_no_placeholder_is_left_in_the_project_template(self):
        """Every @NAME@ marker of the shipped template is filled in."""
        text = SERVER_PROPERTIES_TEMPLATE.read_text(encoding="utf-8")
        rendered = render_server_properties(text, 29092, 29093, Path("/data/storage"))
        assert "@PORT@" not in rendered
        assert "@CONTROLLER_PORT@" not in rendered
        assert "@LOG_DIRS@" not in rendered

    def test_unknown_placeholder_is_refused(self):
        """A template marker the renderer does not know is an error, not a silent leftover."""
        with pytest.raises(ValueError, match="@HOST@"):
            render_server_properties("host=@HOST@\n", 29092, 29093, Path("/data"))

    def test_backslashes_in_the_log_folder_are_escaped(self):
        """Java reads a backslash as an escape, so each one is doubled."""
        rendered = render_server_properties("log.dirs=@LOG_DIRS@\n", 1, 2, Path("C:\\kafka"))
        assert rendered == "log.dirs=C:\\\\kafka\n"

    def test_a_comma_in_the_log_folder_is_refused(self):
        """log.dirs is a comma-separated list, so a folder with a comma cannot be named."""
        with pytest.raises(ValueError, match="comma"):
            render_server_properties("log.dirs=@LOG_DIRS@\n", 1, 2, Path("/a,b"))

    def test_broker_and_controller_cannot_share_a_port(self):
        """Two listeners on one port would fail at start, so rendering refuses it."""
        with pytest.raises(ValueError, match="share port"):
            render_server_properties("", 29092, 29092, Path("/data"))

    def test_out_of_range_port_is_refused(self):
        """A port above 65535 is not a TCP port."""
        with pytest.raises(ValueError, match="not a TCP port"):
            render_server_properties("", 70000, 70001, Path("/data"))


class TestLocalBrokerLayout:
    def test_files_live_under_the_data_folder(self, tmp_path):
        """Properties, storage, logs and pid file are all under <data_dir>/kafka."""
        broker = LocalBroker(tmp_path, 29092)
        home = tmp_path.resolve() / "kafka"
        assert broker.server_properties == home / "server.properties"
        assert broker.storage_dir == home / "storage"
        assert broker.log_file == home / "logs" / "server.log"
        assert broker.pid_file == home / "broker.pid"

    def test_controller_listens_one_port_above_the_broker(self, tmp_path):
        """The controller port is the broker port plus one."""
        broker = LocalBroker(tmp_path, 29092)
        assert broker.controller_port == 29093
        assert broker.bootstrap == "127.0.0.1:29092"

    def test_jars_are_shared_unless_a_folder_is_given(self, tmp_path):
        """Every data folder uses the project's jar cache by default."""
        assert LocalBroker(tmp_path, 29092).jars_dir == DEFAULT_JARS_DIR
        assert LocalBroker(tmp_path, 29092, jars_dir=tmp_path / "j").jars_dir == (
            tmp_path.resolve() / "j"
        )

    def test_from_settings_takes_data_folder_and_port(self, tmp_path):
        """The broker built from settings uses their data folder and broker port."""
        settings = load_settings({"CLAIMS_DATA_DIR": str(tmp_path), "CLAIMS_BROKER_PORT": "29500"})
        broker = LocalBroker.from_settings(settings)
        assert broker.data_dir == tmp_path.resolve()
        assert broker.bootstrap == settings.bootstrap

    def test_no_local_broker_for_an_external_cluster(self):
        """Settings naming an existing cluster do not describe a local broker."""
        settings = load_settings({"CLAIMS_BOOTSTRAP_SERVERS": "kafka.example:9092"})
        with pytest.raises(BrokerError, match="existing cluster"):
            LocalBroker.from_settings(settings)

    def test_last_port_is_refused(self, tmp_path):
        """Port 65535 leaves no port for the controller."""
        with pytest.raises(ValueError, match="controller"):
            LocalBroker(tmp_path, 65535)

    def test_nothing_runs_in_a_fresh_data_folder(self, tmp_path):
        """Without a pid file the broker is not running and stop has nothing to do."""
        broker = LocalBroker(tmp_path, 29092)
        assert not broker.is_running()
        assert broker.stop() is False
