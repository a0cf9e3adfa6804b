"""Throw-away hosts for the image test: a network namespace joined to this
machine by a veth pair on addresses of its own, and an sshd "host" inside one.

The host (``host-init.sh``) also has a private mount namespace: its own /run,
/dev/shm, podman storage and configuration, CNI state, home directory and
/usr/local/bin. It shares no images, containers, locks or firewall rules with
the build side; its iptables rules live and die with its network namespace.
Every process is stopped by PID, and the namespace is deleted only once no
process is left in it.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import pytest

HERE = Path(__file__).resolve().parent
HOST_INIT = HERE / "host-init.sh"
# Private addresses no machine here uses; each namespace takes one /30.
SUBNET = "10.213"


def _ip(*argv: str) -> None:
    subprocess.run(["ip", *argv], check=True, capture_output=True, text=True)


@dataclass
class Netns:
    """A network namespace and the veth pair that reaches it."""

    name: str
    outer: str
    inner: str

    @classmethod
    def create(cls, label: str, octet: int) -> Netns:
        outer, inner = f"{SUBNET}.{octet}.1", f"{SUBNET}.{octet}.2"
        taken = subprocess.run(
            ["ip", "-4", "-o", "addr"], capture_output=True, text=True, check=True
        ).stdout
        if f" {SUBNET}.{octet}." in taken:
            pytest.fail(f"{SUBNET}.{octet}.0/30 is already in use on this machine")
        tag = secrets.token_hex(3)
        netns = cls(f"churn-ab-{label}-{tag}", outer, inner)
        # Interface names have at most 15 characters.
        outside, inside = f"cab{tag}o", f"cab{tag}i"
        _ip("netns", "add", netns.name)
        try:
            _ip("link", "add", outside, "type", "veth", "peer", "name", inside)
            _ip("link", "set", inside, "netns", netns.name)
            _ip("addr", "add", f"{outer}/30", "dev", outside)
            _ip("link", "set", outside, "up")
            _ip("-n", netns.name, "addr", "add", f"{inner}/30", "dev", inside)
            _ip("-n", netns.name, "link", "set", inside, "up")
            _ip("-n", netns.name, "link", "set", "lo", "up")
        except subprocess.CalledProcessError:
            netns.delete()
            raise
        return netns

    def enter(self) -> list[str]:
        """Command prefix that runs a program inside the namespace."""
        return ["nsenter", f"--net=/run/netns/{self.name}"]

    def pids(self) -> list[int]:
        out = subprocess.run(
            ["ip", "netns", "pids", self.name], capture_output=True, text=True
        ).stdout
        return [int(p) for p in out.split()]

    def delete(self) -> list[int]:
        """Stop what is left inside (by PID), delete the namespace and with it
        the veth pair; returns the PIDs that had to be stopped."""
        leftover = self.pids()
        for pid in leftover:
            _signal(pid, signal.SIGKILL)
        subprocess.run(["ip", "netns", "del", self.name], capture_output=True)
        return leftover

    def exists(self) -> bool:
        listing = subprocess.run(
            ["ip", "netns", "list"], capture_output=True, text=True
        ).stdout
        return any(line.split()[0] == self.name for line in listing.splitlines())


def _signal(pid: int, sig: int) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, sig)


def wait_port(address: str, port: int, deadline_s: float) -> bool:
    started = time.monotonic()
    while time.monotonic() - started < deadline_s:
        try:
            with socket.create_connection((address, port), timeout=1):
                return True
        except OSError:
            time.sleep(0.2)
    return False


# The machine's container quirks, as deploy/lib/containers-env.sh sets them
# for the build side (docs/deploy.md): runc, explicit ulimits.
CONTAINERS_CONF = """\
[containers]
default_ulimits = ["nofile=20000:20000", "nproc=4096:4096"]

[engine]
runtime = "runc"
"""
STORAGE_CONF = """\
[storage]
driver = "overlay"
graphroot = "/var/lib/containers/storage"
runroot = "/run/containers/storage"
"""
SSHD_CONFIG = """\
ListenAddress {address}:22
HostKey {root}/ssh_host_ed25519_key
PidFile none
AuthorizedKeysFile .ssh/authorized_keys
PermitRootLogin prohibit-password
PubkeyAuthentication yes
PasswordAuthentication no
KbdInteractiveAuthentication no
UsePAM no
AllowUsers root
Subsystem sftp internal-sftp
LogLevel VERBOSE
"""


@dataclass
class TestHost:
    """sshd in its own namespaces, reachable only with the key made for it."""

    netns: Netns
    root: Path
    process: subprocess.Popen[bytes]
    tunnels: list[subprocess.Popen[bytes]] = field(default_factory=list)

    __test__ = False  # not a test class, whatever its name

    @property
    def destination(self) -> str:
        return f"root@{self.netns.inner}"

    @property
    def home(self) -> Path:
        """The host's /root, as seen from the build side."""
        return self.root / "home"

    def ssh_options(self) -> list[str]:
        return [
            "-F",
            "/dev/null",
            "-i",
            str(self.root / "client_key"),
            "-o",
            "IdentitiesOnly=yes",
            "-o",
            f"UserKnownHostsFile={self.root / 'known_hosts'}",
            "-o",
            "StrictHostKeyChecking=yes",
            "-o",
            "ConnectTimeout=10",
            "-o",
            "BatchMode=yes",
        ]

    def ssh(
        self, command: str, check: bool = True, timeout: float = 300
    ) -> subprocess.CompletedProcess[str]:
        result = subprocess.run(
            ["ssh", *self.ssh_options(), self.destination, command],
            capture_output=True,
            text=True,
            timeout=timeout,
        )
        if check and result.returncode != 0:
            pytest.fail(
                f"on the test host: {command}\nexited {result.returncode}\n"
                f"{result.stdout[-2000:]}\n{result.stderr[-4000:]}"
            )
        return result

    def scp(self, source: Path, target: str) -> None:
        subprocess.run(
            ["scp", *self.ssh_options(), str(source), f"{self.destination}:{target}"],
            check=True,
            capture_output=True,
            timeout=300,
        )

    def tunnel(self, forwards: dict[int, int]) -> None:
        """``ssh -N -L`` as docs/deploy.md tells a user: local port -> the
        host's loopback port."""
        argv = ["ssh", *self.ssh_options(), "-N", "-o", "ExitOnForwardFailure=yes"]
        for local, remote in forwards.items():
            argv += ["-L", f"127.0.0.1:{local}:127.0.0.1:{remote}"]
        process = subprocess.Popen([*argv, self.destination])
        self.tunnels.append(process)
        first = next(iter(forwards))
        if not wait_port("127.0.0.1", first, 20):
            pytest.fail(f"ssh tunnel to the test host never listened on {first}")

    def stop(self) -> list[int]:
        """Remove every container, image and volume on the host, stop the
        tunnels and sshd; returns PIDs that outlived them (killed)."""
        if self.process.poll() is None:
            self.ssh(
                "podman pod rm -af -t 5; podman rm -af -t 5; podman system reset -f",
                check=False,
            )
        for process in [*self.tunnels, self.process]:
            if process.poll() is None:
                process.terminate()
                try:
                    process.wait(timeout=10)
                except subprocess.TimeoutExpired:
                    process.kill()
                    process.wait(timeout=10)
        return self.netns.delete()


def start_test_host(netns: Netns, root: Path) -> TestHost:
    """Prepare ROOT (keys, sshd and podman configuration) and start sshd in
    ``netns`` through host-init.sh."""
    for name in (
        "var-lib-containers",
        "etc-cni-net.d",
        "var-lib-cni",
        "var-tmp",
        "usr-local-bin",
    ):
        (root / name).mkdir(parents=True)
    # Policy and registries as installed; our own engine and storage settings.
    shutil.copytree("/etc/containers", root / "etc-containers")
    for stale in ("containers.conf", "storage.conf"):
        (root / "etc-containers" / stale).unlink(missing_ok=True)
    (root / "etc-containers" / "containers.conf").write_text(CONTAINERS_CONF)
    (root / "etc-containers" / "storage.conf").write_text(STORAGE_CONF)
    (root / "var-tmp").chmod(0o1777)
    # What `pip install podman-compose` puts on a real host's PATH.
    compose = Path(sys.executable).parent / "podman-compose"
    (root / "usr-local-bin" / "podman-compose").symlink_to(compose)

    keygen = ["ssh-keygen", "-q", "-t", "ed25519", "-N", ""]
    subprocess.run([*keygen, "-f", str(root / "client_key")], check=True)
    subprocess.run([*keygen, "-f", str(root / "ssh_host_ed25519_key")], check=True)
    home = root / "home"
    (home / ".ssh").mkdir(parents=True)
    home.chmod(0o700)
    (home / ".ssh").chmod(0o700)
    authorized = home / ".ssh" / "authorized_keys"
    authorized.write_text((root / "client_key.pub").read_text())
    authorized.chmod(0o600)
    host_key = (root / "ssh_host_ed25519_key.pub").read_text().split()[:2]
    (root / "known_hosts").write_text(f"{netns.inner} {' '.join(host_key)}\n")
    (root / "sshd_config").write_text(
        SSHD_CONFIG.format(address=netns.inner, root=root)
    )

    # A venv's python may be a link into /root (pyenv): keep that visible.
    interpreter = Path(sys.executable).resolve()
    keep = (
        [str(Path("/root", interpreter.relative_to("/root").parts[0]))]
        if interpreter.is_relative_to("/root")
        else []
    )
    log = (root / "sshd.log").open("wb")
    process = subprocess.Popen(
        [
            *netns.enter(),
            "unshare",
            "--mount",
            "--propagation",
            "private",
            "bash",
            str(HOST_INIT),
            str(root),
            *keep,
        ],
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    host = TestHost(netns, root, process)
    if not wait_port(netns.inner, 22, 20) or process.poll() is not None:
        host.stop()
        pytest.fail(f"test host sshd did not start:\n{(root / 'sshd.log').read_text()}")
    return host
