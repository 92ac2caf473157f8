"""Local Kafka broker: fetch, format, start, probe and stop one KRaft node.

Development, the demo and the test suite run on a single-node Apache Kafka
broker started from Maven Central jars with the machine's Java. This module
owns its whole lifecycle under ``<data_dir>/kafka``::

    server.properties   rendered from infra/kafka/server.properties
    cluster.id          the KRaft cluster id, chosen once
    storage/            the broker's log directory, formatted once
    logs/server.log     the broker's own log (log4j2)
    broker.out          the JVM's stdout and stderr
    broker.pid          pid of the running broker

The jars are shared by every data folder (``<project>/.data/kafka-jars`` by
default) and refetched only when ``infra/kafka/pom.xml`` changes.

:func:`wait_for_kafka` waits for any cluster, local or not, to answer.
"""

from __future__ import annotations

import base64
import contextlib
import logging
import os
import re
import shutil
import socket
import subprocess
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import psutil
from kafka import KafkaAdminClient
from kafka.errors import KafkaError

from pipeline.config import PROJECT_ROOT, Settings, default_data_dir
from pipeline.jars import JarsError, fetch_jars, last_lines, locked

log = logging.getLogger(__name__)

KAFKA_INFRA = PROJECT_ROOT / "infra" / "kafka"
POM = KAFKA_INFRA / "pom.xml"
SERVER_PROPERTIES_TEMPLATE = KAFKA_INFRA / "server.properties"
LOG4J2_CONFIG = KAFKA_INFRA / "log4j2.properties"
DEFAULT_JARS_DIR = default_data_dir(os.environ) / "kafka-jars"

JVM_HEAP = ("-Xms512m", "-Xmx1g")
MIN_JAVA = 17
KAFKA_MAIN = "kafka.Kafka"
STORAGE_TOOL = "kafka.tools.StorageTool"
LISTEN_HOST = "127.0.0.1"

_PLACEHOLDER = re.compile(r"@[A-Z_]+@")
_TAIL_LINES = 25


class BrokerError(RuntimeError):
    """The local broker could not be prepared, started or stopped; the message says why."""


class BrokerTimeout(BrokerError, TimeoutError):
    """A Kafka cluster did not answer within the time allowed."""


@dataclass(frozen=True)
class BrokerStatus:
    """What is known about the local broker at one moment."""

    running: bool
    pid: int | None
    bootstrap: str
    answers: bool
    log: Path


def render_server_properties(template: str, port: int, controller_port: int, log_dirs: Path) -> str:
    """Fill the ``@PORT@``, ``@CONTROLLER_PORT@`` and ``@LOG_DIRS@`` placeholders of *template*."""
    for name, value in (("port", port), ("controller_port", controller_port)):
        if not 1 <= value <= 65535:
            raise ValueError(f"{name}={value} is not a TCP port")
    if port == controller_port:
        raise ValueError(f"the broker and its controller cannot share port {port}")
    log_dirs_text = str(log_dirs)
    if "," in log_dirs_text or "\n" in log_dirs_text:
        # log.dirs is a comma-separated list in a line-oriented file.
        raise ValueError(f"log directory {log_dirs_text!r} cannot contain a comma or newline")
    rendered = (
        template.replace("@CONTROLLER_PORT@", str(controller_port))
        .replace("@PORT@", str(port))
        # Backslash is the escape character of Java properties files.
        .replace("@LOG_DIRS@", log_dirs_text.replace("\\", "\\\\"))
    )
    leftover = sorted(set(_PLACEHOLDER.findall(rendered)))
    if leftover:
        raise ValueError(f"server.properties template has unknown placeholders: {leftover}")
    return rendered


def wait_for_kafka(bootstrap: str, timeout: float) -> None:
    """Return once the cluster at *bootstrap* lists its topics (BrokerTimeout after *timeout* s)."""
    deadline = time.monotonic() + timeout
    while True:
        remaining = deadline - time.monotonic()
        reason = _probe(bootstrap, _attempt_timeout(remaining))
        if reason is None:
            return
        if time.monotonic() >= deadline:
            raise BrokerTimeout(
                f"Kafka at {bootstrap} did not answer within {timeout:g} s (last error: {reason})"
            )
        time.sleep(0.25)


def kafka_answers(bootstrap: str, timeout: float = 3.0) -> bool:
    """True when the cluster at *bootstrap* lists its topics within *timeout* seconds."""
    return _probe(bootstrap, timeout) is None


class LocalBroker:
    """One single-node KRaft broker whose files live under ``<data_dir>/kafka``."""

    def __init__(self, data_dir: Path, port: int, *, jars_dir: Path | None = None) -> None:
        if not 1 <= port < 65535:
            raise ValueError(f"broker port {port} leaves no room for its controller on port + 1")
        self.data_dir = Path(data_dir).resolve()
        self.port = port
        self.controller_port = port + 1
        self.jars_dir = Path(jars_dir).resolve() if jars_dir is not None else DEFAULT_JARS_DIR
        self.home = self.data_dir / "kafka"
        self.server_properties = self.home / "server.properties"
        self.storage_dir = self.home / "storage"
        self.logs_dir = self.home / "logs"
        self.log_file = self.logs_dir / "server.log"
        self.out_file = self.home / "broker.out"
        self.pid_file = self.home / "broker.pid"
        self.cluster_id_file = self.home / "cluster.id"
        self._child: subprocess.Popen[bytes] | None = None
        self._log_offset = 0  # where server.log stood when this object last launched Java

    @classmethod
    def from_settings(cls, settings: Settings, *, jars_dir: Path | None = None) -> LocalBroker:
        """The local broker described by *settings* (its data folder and port)."""
        if settings.external_cluster:
            raise BrokerError(
                f"an existing cluster is configured ({settings.bootstrap}); "
                "no local broker is managed"
            )
        return cls(settings.data_dir, settings.broker_port, jars_dir=jars_dir)

    @property
    def bootstrap(self) -> str:
        """The address clients use to reach this broker."""
        return f"{LISTEN_HOST}:{self.port}"

    def __repr__(self) -> str:
        return f"LocalBroker(data_dir={str(self.data_dir)!r}, port={self.port})"

    # -- jars -------------------------------------------------------------------------

    def ensure_jars(self) -> Path:
        """Fetch the jars with Maven unless the cache matches pom.xml; return their folder."""
        try:
            return fetch_jars(
                POM, self.jars_dir, what="the Kafka broker", expect="kafka_2.13-*.jar"
            )
        except JarsError as exc:
            raise BrokerError(str(exc)) from exc

    # -- lifecycle --------------------------------------------------------------------

    def start(self, timeout: float = 90) -> None:
        """Start the broker unless it already runs, and return once it answers clients.

        *timeout* bounds the wait for the broker to answer, after the jars are
        fetched and the storage is formatted.
        """
        self.home.mkdir(parents=True, exist_ok=True)
        with locked(self.home / ".lock"):
            if self._our_process() is not None:
                log.info("kafka broker already running at %s", self.bootstrap)
                self._wait_until_answering(timeout, launched=False)
                return
            self.pid_file.unlink(missing_ok=True)
            if self._adopt_listener():
                self._wait_until_answering(timeout, launched=False)
                return
            java = _java()
            jars = self.ensure_jars()
            classpath = str(jars / "*")
            self.server_properties.write_text(
                render_server_properties(
                    SERVER_PROPERTIES_TEMPLATE.read_text(encoding="utf-8"),
                    self.port,
                    self.controller_port,
                    self.storage_dir,
                ),
                encoding="utf-8",
            )
            self.logs_dir.mkdir(parents=True, exist_ok=True)
            self._format_storage(java, classpath)
            self._launch(java, classpath)
            self._wait_until_answering(timeout, launched=True)
            log.info("kafka broker answering at %s (pid %s)", self.bootstrap, self._read_pid())

    def stop(self, timeout: float = 30) -> bool:
        """Stop the broker named in the pid file if it is ours; True when one was stopped."""
        if not self.home.is_dir():
            return False
        with locked(self.home / ".lock"):
            return self._stoplocked(timeout)

    def kill(self, timeout: float = 10) -> int:
        """SIGKILL the broker, as a crash would (no controlled shutdown, no flush); its pid.

        :meth:`start` brings it back on the same storage, recovering the logs the
        crash left unclean.
        """
        if not self.home.is_dir():
            raise BrokerError(f"no broker has run in {self.home}; nothing to kill")
        with locked(self.home / ".lock"):
            process = self._our_process()
            if process is None:
                raise BrokerError(f"no broker of {self.home} is running; nothing to kill")
            log.info("killing kafka broker (pid %s) with SIGKILL", process.pid)
            with contextlib.suppress(psutil.NoSuchProcess):
                process.kill()
            if not self._wait_exit(process, timeout):
                raise BrokerError(f"kafka broker (pid {process.pid}) did not exit on SIGKILL")
            self.pid_file.unlink(missing_ok=True)
            self._child = None
            return int(process.pid)

    def is_running(self) -> bool:
        """True when the pid file names a live broker process of this data folder."""
        return self._our_process() is not None

    def status(self) -> BrokerStatus:
        """Whether the broker runs, its pid, and whether it answers clients now."""
        process = self._our_process()
        running = process is not None
        return BrokerStatus(
            running=running,
            pid=process.pid if process is not None else None,
            bootstrap=self.bootstrap,
            answers=running and kafka_answers(self.bootstrap),
            log=self.log_file,
        )

    # -- internals --------------------------------------------------------------------

    def _format_storage(self, java: str, classpath: str) -> None:
        if (self.storage_dir / "meta.properties").exists():
            return
        cluster_id = self._cluster_id()
        log.info("formatting kafka storage in %s", self.storage_dir)
        result = subprocess.run(
            [
                java,
                *self._jvm_logging(),
                "-cp",
                classpath,
                STORAGE_TOOL,
                "format",
                "-t",
                cluster_id,
                "-c",
                str(self.server_properties),
                "--ignore-formatted",
            ],
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            cwd=self.home,
            check=False,
        )
        if result.returncode != 0:
            output = last_lines(result.stdout.decode(errors="replace"))
            raise BrokerError(
                f"formatting the Kafka storage in {self.storage_dir} failed "
                f"(exit code {result.returncode}):\n{output}"
            )

    def _cluster_id(self) -> str:
        try:
            return self.cluster_id_file.read_text(encoding="ascii").strip()
        except FileNotFoundError:
            pass
        cluster_id = _new_cluster_id()
        _write_atomically(self.cluster_id_file, cluster_id + "\n")
        return cluster_id

    def _jvm_logging(self) -> list[str]:
        return [f"-Dkafka.logs.dir={self.logs_dir}", f"-Dlog4j2.configurationFile={LOG4J2_CONFIG}"]

    def _launch(self, java: str, classpath: str) -> None:
        command = [
            java,
            *JVM_HEAP,
            *self._jvm_logging(),
            "-cp",
            classpath,
            KAFKA_MAIN,
            str(self.server_properties),
        ]
        log.info("starting kafka broker at %s", self.bootstrap)
        self._log_offset = _size(self.log_file)
        with self.out_file.open("wb") as out:
            self._child = subprocess.Popen(
                command,
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
                cwd=self.home,
                # Its own session: Ctrl-C in the terminal that started it does not stop it.
                start_new_session=True,
            )
        _write_atomically(self.pid_file, f"{self._child.pid}\n")

    def _stoplocked(self, timeout: float) -> bool:
        process = self._our_process()
        if process is None:
            if self.pid_file.exists():
                log.info("removing stale pid file %s", self.pid_file)
            self.pid_file.unlink(missing_ok=True)
            self._child = None
            return False
        log.info("stopping kafka broker (pid %s)", process.pid)
        with contextlib.suppress(psutil.NoSuchProcess):
            process.terminate()
        if not self._wait_exit(process, timeout):
            log.warning("kafka broker (pid %s) ignored SIGTERM; killing it", process.pid)
            with contextlib.suppress(psutil.NoSuchProcess):
                process.kill()
            if not self._wait_exit(process, 10):
                raise BrokerError(f"kafka broker (pid {process.pid}) did not exit")
        self.pid_file.unlink(missing_ok=True)
        self._child = None
        return True

    def _wait_until_answering(self, timeout: float, *, launched: bool) -> None:
        """Wait for clients to be answered; a broker this call launched is stopped on timeout."""
        deadline = time.monotonic() + timeout
        while True:
            if self._our_process() is None:
                code = self._child.poll() if self._child is not None else None
                self._child = None
                self.pid_file.unlink(missing_ok=True)
                exit_text = f" with exit code {code}" if code is not None else ""
                raise BrokerError(
                    f"the Kafka broker exited{exit_text} before it answered on "
                    f"{self.bootstrap}.\n{self._log_tails()}"
                )
            reason = _probe(self.bootstrap, _attempt_timeout(deadline - time.monotonic()))
            if reason is None:
                return
            if time.monotonic() >= deadline:
                if launched:
                    self._stoplocked(10)
                state = "it has been stopped" if launched else "it is still running"
                raise BrokerTimeout(
                    f"the Kafka broker did not answer on {self.bootstrap} within {timeout:g} s "
                    f"(last error: {reason}); {state}.\n{self._log_tails()}"
                )
            time.sleep(0.25)

    def _adopt_listener(self) -> bool:
        """Handle a port already in use: adopt our own broker (pid file lost) or refuse."""
        for port in (self.port, self.controller_port):
            if _port_free(port):
                continue
            owner = _listener(port)
            if owner is not None and self._is_ours(owner):
                log.info("found this data folder's broker (pid %s) without a pid file", owner.pid)
                _write_atomically(self.pid_file, f"{owner.pid}\n")
                return True
            role = "broker" if port == self.port else "controller"
            raise BrokerError(
                f"port {port} on {LISTEN_HOST} (the {role} port) is already in use by "
                f"{_describe(owner)}, which is not this data folder's broker; stop it or "
                "choose another broker port"
            )
        return False

    def _read_pid(self) -> int | None:
        try:
            return int(self.pid_file.read_text(encoding="ascii").strip())
        except (FileNotFoundError, ValueError):
            return None

    def _our_process(self) -> psutil.Process | None:
        pid = self._read_pid()
        if pid is None:
            return None
        if self._child is not None and self._child.pid == pid:
            self._child.poll()  # reaps our own child if it has exited
        try:
            process = psutil.Process(pid)
            if process.status() == psutil.STATUS_ZOMBIE:
                return None
        except psutil.Error:
            return None
        return process if self._is_ours(process) else None

    def _is_ours(self, process: psutil.Process) -> bool:
        try:
            cmdline = process.cmdline()
            name = process.name()
        except psutil.Error:
            return False
        is_java = "java" in name or (bool(cmdline) and "java" in Path(cmdline[0]).name)
        return is_java and KAFKA_MAIN in cmdline and str(self.server_properties) in cmdline

    def _wait_exit(self, process: psutil.Process, timeout: float) -> bool:
        try:
            if self._child is not None and self._child.pid == process.pid:
                self._child.wait(timeout)
            else:
                process.wait(timeout)
        except (subprocess.TimeoutExpired, psutil.TimeoutExpired):
            return False
        return True

    def _log_tails(self) -> str:
        parts = []
        for path, since in ((self.out_file, 0), (self.log_file, self._log_offset)):
            tail = _tail(path, since)
            if tail:
                parts.append(f"--- last lines of {path} ---\n{tail}")
        return "\n".join(parts) or f"(nothing in {self.out_file} or {self.log_file})"


class _ProbeAdminClient(KafkaAdminClient):  # type: ignore[misc]
    """An admin client that releases its IO thread when it cannot bootstrap.

    kafka-python 3.0 starts a background IO thread before it bootstraps and
    leaves it running when bootstrapping fails inside ``__init__``; a wait loop
    would leak one thread per attempt.
    """

    def __init__(self, **configs: object) -> None:
        try:
            super().__init__(**configs)
        except BaseException:
            if hasattr(self, "_net"):
                self._closed = False
                with contextlib.suppress(Exception):
                    self.close()
            raise


def _probe(bootstrap: str, timeout: float) -> str | None:
    """None when *bootstrap* lists its topics within *timeout*, else why not."""
    refused = _tcp_unreachable(bootstrap, timeout)
    if refused is not None:
        return refused
    timeout_ms = max(int(timeout * 1000), 200)
    try:
        admin = _ProbeAdminClient(
            bootstrap_servers=bootstrap,
            client_id="claims-broker-probe",
            bootstrap_timeout_ms=timeout_ms,
            request_timeout_ms=timeout_ms,
        )
    except (KafkaError, OSError) as exc:
        return _reason(exc)
    try:
        admin.list_topics()
    except (KafkaError, OSError) as exc:
        return _reason(exc)
    finally:
        admin.close()
    return None


def _reason(exc: BaseException) -> str:
    text = str(exc)
    name = type(exc).__name__
    return text if text.startswith(name) else f"{name}: {text}"


def _tcp_unreachable(bootstrap: str, timeout: float) -> str | None:
    """None when some address in *bootstrap* accepts TCP, else the last error.

    A cheap first check: it avoids building a Kafka client while nothing listens.
    """
    errors = []
    for server in bootstrap.split(","):
        host, _, port_text = server.strip().rpartition(":")
        host = host.strip("[]")
        if not host or not port_text.isdigit():
            return None  # not host:port; let the Kafka client judge it
        try:
            with socket.create_connection((host, int(port_text)), timeout=min(timeout, 2.0)):
                return None
        except OSError as exc:
            errors.append(f"{server.strip()}: {exc}")
    return "; ".join(errors) or "no bootstrap servers"


def _attempt_timeout(remaining: float) -> float:
    return max(0.5, min(5.0, remaining))


def free_port_pair() -> int:
    """A port free on 127.0.0.1 together with the port above it (a broker and its controller)."""
    for _ in range(50):
        with socket.socket() as low:
            low.bind((LISTEN_HOST, 0))
            port: int = low.getsockname()[1]
            if port < 65535 and _port_free(port + 1):
                return port
    raise BrokerError(f"no two adjacent free ports on {LISTEN_HOST}")


def _port_free(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((LISTEN_HOST, port))
        except OSError:
            return False
    return True


def _listener(port: int) -> psutil.Process | None:
    """The process listening on TCP *port*, when the system lets us see it."""
    try:
        connections = psutil.net_connections(kind="tcp")
    except psutil.Error:
        return None
    for conn in connections:
        if conn.status == psutil.CONN_LISTEN and conn.laddr and conn.laddr.port == port:
            if conn.pid is None:
                return None
            try:
                return psutil.Process(conn.pid)
            except psutil.Error:
                return None
    return None


def _describe(process: psutil.Process | None) -> str:
    if process is None:
        return "another process"
    try:
        return f"pid {process.pid} ({process.name()})"
    except psutil.Error:
        return f"pid {process.pid}"


def _java() -> str:
    java = shutil.which("java")
    if java is None:
        raise BrokerError(
            f"Java is not on PATH; the Kafka broker needs Java {MIN_JAVA} or newer. "
            f"Install a Java {MIN_JAVA} runtime (e.g. the 'openjdk-{MIN_JAVA}-jre-headless' "
            "system package) and try again."
        )
    result = subprocess.run(
        [java, "-version"], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, check=False
    )
    match = re.search(r'version "(\d+)(?:\.(\d+))?', result.stdout.decode(errors="replace"))
    if match:
        major = int(match.group(1))
        if major == 1 and match.group(2):  # "1.8.0" style
            major = int(match.group(2))
        if major < MIN_JAVA:
            raise BrokerError(
                f"{java} is Java {major}; the Kafka broker needs Java {MIN_JAVA} or newer"
            )
    return java


def _new_cluster_id() -> str:
    """A KRaft cluster id in Kafka's own format (what ``StorageTool random-uuid`` prints)."""
    while True:
        text = base64.urlsafe_b64encode(uuid.uuid4().bytes).decode("ascii").rstrip("=")
        if not text.startswith("-"):  # Kafka avoids ids that read like a command-line flag
            return text


def _write_atomically(path: Path, text: str) -> None:
    temporary = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    temporary.write_text(text, encoding="ascii")
    temporary.replace(path)


def _tail(path: Path, since: int = 0, lines: int = _TAIL_LINES) -> str:
    """The last *lines* lines of *path*, from byte *since* on (all of it if the file rolled)."""
    try:
        with path.open("rb") as handle:
            end = handle.seek(0, os.SEEK_END)
            start = since if since <= end else 0
            handle.seek(max(start, end - 64 * 1024))
            data = handle.read()
    except FileNotFoundError:
        return ""
    return last_lines(data.decode(errors="replace"), lines)


def _size(path: Path) -> int:
    try:
        return path.stat().st_size
    except FileNotFoundError:
        return 0


@contextlib.contextmanager
def cluster_for(
    settings: Settings, *, keep: bool = False, say: Callable[[str], None] | None = None
) -> Iterator[str]:
    """Yield the bootstrap address to use, starting the local broker if it is not running.

    With an existing cluster configured, nothing is started. A local broker this
    call started is stopped on exit (success, error or Ctrl-C) unless *keep*.
    """
    if settings.external_cluster:
        if say:
            say(f"Using the existing cluster at {settings.bootstrap}")
        yield settings.bootstrap
        return
    broker = LocalBroker.from_settings(settings)
    started = False
    if not broker.is_running():
        if say:
            say(f"Starting Kafka at {broker.bootstrap} (the first run fetches the jars) ...")
        broker.start()
        started = True
    if say:
        say(f"Kafka answers at {broker.bootstrap}")
    try:
        yield broker.bootstrap
    finally:
        if started and not keep:
            broker.stop()
            if say:
                say("Kafka stopped")
