"""A Prometheus multiprocess directory of its own for every server instance.

BentoML 1.4 keeps the multiprocess files of every server in
``$BENTOML_HOME/prometheus_multiproc_dir`` and ``rmtree``s that directory
whenever a server starts (``bentoml.serving.ensure_prometheus_dir``). A second
server on the same home therefore unlinks the files the first one's workers
are still writing through ``mmap``: the first server's ``/metrics`` freezes
and nothing says so (docs/upstream-bentoml-multiproc-dir.md).

``service.py`` points BentoML at ``instance_dir(home, host, pid)``
(``use_instance_dir``) when the ``bentoml serve`` process imports it, before
BentoML resolves the directory: each instance wipes only its own. Nothing is
created here (``bentoml build`` imports the service too); BentoML creates the
directory when it serves, and the entry workers remove the directories of
instances that are gone.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import socket
from pathlib import Path

INSTANCES_DIR = "churn-ab-prometheus"


def instance_dir(bentoml_home: Path, host: str, pid: int) -> Path:
    """This instance's directory: one per host (containers on a shared
    volume differ by host name) and server process."""
    return bentoml_home / INSTANCES_DIR / f"{host}-{pid}"


def this_instance_dir(bentoml_home: Path) -> Path:
    return instance_dir(bentoml_home, socket.gethostname(), os.getpid())


def use_instance_dir() -> None:
    """Point BentoML's multiprocess directory at this instance's own.

    Called at import of ``service.py``, before BentoML resolves the directory
    (the ``bentoml serve`` process imports that file first). Workers import it
    too; only the serving process ever reads the value.
    """
    from bentoml._internal.configuration.containers import BentoMLContainer

    home = Path(BentoMLContainer.bentoml_home.get())
    BentoMLContainer.prometheus_multiproc_dir.set(str(this_instance_dir(home)))


def is_instance_dir(directory: Path, host: str, server_pid: int) -> bool:
    """True when ``directory`` is the one ``instance_dir`` gives this server."""
    return (
        directory.parent.name == INSTANCES_DIR
        and directory.name == f"{host}-{server_pid}"
    )


def pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's process: alive
        return True
    return True


def remove_stale_instance_dirs(current: Path, host: str) -> list[Path]:
    """Remove the directories of this host's instances whose server is gone.

    A directory is only ever removed when its server process no longer exists,
    so a running instance's files are never touched. Other hosts' directories
    (a shared volume) are left to their own hosts.
    """
    removed: list[Path] = []
    prefix = f"{host}-"
    with contextlib.suppress(FileNotFoundError):
        for candidate in current.parent.iterdir():
            name = candidate.name
            if candidate == current or not name.startswith(prefix):
                continue
            pid_text = name[len(prefix) :]
            if pid_text.isdigit() and not pid_alive(int(pid_text)):
                shutil.rmtree(candidate, ignore_errors=True)
                removed.append(candidate)
    return removed
