"""Java programs from Maven Central: a pom's runtime jars, fetched once into a cache folder.

The Kafka broker (``infra/kafka/pom.xml``) and Synthea (``infra/synthea/pom.xml``)
run from such a folder. It is fetched with ``mvn dependency:copy-dependencies``
the first time, and again only when the pom changes (the folder keeps the pom's
digest); two processes never fetch into it at once.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import logging
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

log = logging.getLogger(__name__)

MARKER = ".pom.sha256"
TAIL_LINES = 25


class JarsError(RuntimeError):
    """Maven is missing, or could not fetch a pom's jars; the message says what to do."""


def fetch_jars(pom: Path, into: Path, *, what: str, expect: str) -> Path:
    """The folder *into* holding *pom*'s runtime jars, fetched unless they match the pom.

    *what* names the program in messages ("the Kafka broker"); *expect* is a
    glob of a jar that must be among them (a fetch without it failed).
    """
    digest = hashlib.sha256(pom.read_bytes()).hexdigest()
    if _current(into, digest):
        return into
    into.parent.mkdir(parents=True, exist_ok=True)
    with locked(into.parent / f".{into.name}.lock"):
        if _current(into, digest):
            return into
        mvn = shutil.which("mvn")
        if mvn is None:
            raise JarsError(
                f"Maven (mvn) is not on PATH; it fetches the jars of {what}. "
                "Install Apache Maven 3 (e.g. the 'maven' system package) and try again."
            )
        staging = into.with_name(f".{into.name}.partial")
        shutil.rmtree(staging, ignore_errors=True)
        print(
            f"Fetching the jars of {what} with Maven into {into} "
            "(only when its pom.xml is new or changed; the first fetch can take a minute)...",
            file=sys.stderr,
            flush=True,
        )
        started = time.monotonic()
        result = subprocess.run(
            [
                mvn,
                "-q",
                "-B",
                "-f",
                str(pom),
                "dependency:copy-dependencies",
                f"-DoutputDirectory={staging}",
                "-DincludeScope=runtime",
            ],
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            check=False,
        )
        if result.returncode != 0 or not any(staging.glob(expect)):
            shutil.rmtree(staging, ignore_errors=True)
            output = last_lines(result.stdout.decode(errors="replace"))
            raise JarsError(
                f"Maven could not fetch the jars of {what} (exit code {result.returncode}).\n"
                f"{output}"
            )
        shutil.rmtree(into, ignore_errors=True)
        staging.rename(into)
        (into / MARKER).write_text(digest + "\n", encoding="ascii")
        print(
            f"Fetched the jars of {what} in {time.monotonic() - started:.0f} s.",
            file=sys.stderr,
            flush=True,
        )
        log.info("jars of %s fetched into %s", what, into)
    return into


def classpath(folder: Path) -> str:
    """Every jar in *folder*, as a Java class path."""
    return ":".join(str(p) for p in sorted(folder.glob("*.jar")))


def _current(into: Path, digest: str) -> bool:
    try:
        return (into / MARKER).read_text(encoding="ascii").strip() == digest
    except FileNotFoundError:
        return False


def last_lines(text: str, lines: int = TAIL_LINES) -> str:
    """The last *lines* lines of a program's output, for an error message."""
    return "\n".join(text.rstrip().splitlines()[-lines:])


@contextlib.contextmanager
def locked(path: Path) -> Iterator[None]:
    """Hold an exclusive lock on *path* so two processes never start or fetch at once."""
    with path.open("a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)
