"""Helpers for the image test: commands with timings, free ports, readiness
polling, the deploy storage environment, and undoing podman's firewall rules.

netavark (podman's network backend) adds NAT/forward chains for published
ports and keeps some after the last container is gone. The test snapshots the
rule set before it starts a container and removes exactly what appeared since,
so it leaves the host's own firewall as it found it.
"""

from __future__ import annotations

import hashlib
import io
import json
import shlex
import shutil
import subprocess
import tarfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest

REPO = Path(__file__).resolve().parents[2]
DEPLOY = REPO / "deploy"
# Names of everything this test creates start with it, so the final check can
# find leftovers without touching anybody else's containers.
PREFIX = "churn-ab-imagetest"
READY_DEADLINE_S = 180.0

TIMINGS: dict[str, float] = {}


def timed(step: str, argv: list[str], env: dict[str, str], **kw: object) -> str:
    """Run a command, record its wall time, fail the test with its output.
    Nothing may hang the run: 10 minutes unless ``timeout=`` says otherwise."""
    started = time.monotonic()
    kw.setdefault("timeout", 600)
    result = subprocess.run(argv, env=env, capture_output=True, text=True, **kw)  # type: ignore[call-overload]
    TIMINGS[step] = TIMINGS.get(step, 0.0) + time.monotonic() - started
    if result.returncode != 0:
        pytest.fail(
            f"{step}: {' '.join(argv)} exited {result.returncode}\n"
            f"--- stdout\n{result.stdout[-4000:]}\n--- stderr\n{result.stderr[-8000:]}"
        )
    return str(result.stdout)


def check_prediction(response: httpx.Response) -> dict[str, object]:
    """A /predict answer of either variant, internally consistent."""
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["model_version"] in {"v1", "v2"}
    probability = body["churn_probability"]
    assert isinstance(probability, float) and 0.0 <= probability <= 1.0
    assert body["prediction"] == int(body["will_churn"])
    assert body["will_churn"] == (body["prediction"] == 1)
    return dict(body)


def wait_ready(base_url: str, is_alive: Callable[[], bool]) -> float:
    """Poll /readyz; returns seconds waited. ``is_alive()`` stops early on a crash."""
    started = time.monotonic()
    while time.monotonic() - started < READY_DEADLINE_S:
        try:
            if httpx.get(f"{base_url}/readyz", timeout=2).status_code == 200:
                return time.monotonic() - started
        except httpx.TransportError:
            pass
        if not is_alive():
            break
        time.sleep(0.5)
    return -1.0


def derived_archive(
    archive: Path, ref: str, target: Path, change: Callable[[dict[str, Any]], None]
) -> Path:
    """A new image in an OCI archive, made from the one in ``archive``: the
    same layer blobs, copied as they are, a config whose run settings
    (``config`` in the OCI image config: Labels, Entrypoint, Cmd...) ``change``
    edits in place, and the name ``ref``. It is what ``buildah config`` and
    ``buildah commit`` make of that image, without exporting and compressing
    its gigabyte of layers again; a host that has them loads only the config."""
    with tarfile.open(archive) as source:

        def read(name: str) -> dict[str, Any]:
            member = source.extractfile(name)
            assert member is not None, f"{archive} has no {name}"
            return dict(json.load(member))

        def blob(digest: str) -> str:
            return "blobs/" + digest.replace(":", "/", 1)

        index = read("index.json")
        (entry,) = index["manifests"]
        manifest = read(blob(entry["digest"]))
        config = read(blob(manifest["config"]["digest"]))
        replaced = {blob(entry["digest"]), blob(manifest["config"]["digest"])}
        change(config.setdefault("config", {}))
        added: dict[str, bytes] = {}

        def add(document: dict[str, Any]) -> dict[str, object]:
            data = json.dumps(document, separators=(",", ":")).encode()
            digest = "sha256:" + hashlib.sha256(data).hexdigest()
            added[blob(digest)] = data
            return {"digest": digest, "size": len(data)}

        manifest["config"] = manifest["config"] | add(config)
        annotations = entry.get("annotations", {})
        entry = entry | add(manifest)
        entry["annotations"] = annotations | {"org.opencontainers.image.ref.name": ref}
        added["index.json"] = json.dumps(index | {"manifests": [entry]}).encode()
        replaced.add("index.json")
        with tarfile.open(target, "w") as copy:
            for member in source:
                name = member.name.removeprefix("./")
                if name not in added and name not in replaced:
                    copy.addfile(member, source.extractfile(member))
            for name, data in added.items():
                info = tarfile.TarInfo(name)
                info.size, info.mode, info.mtime = len(data), 0o644, int(time.time())
                copy.addfile(info, io.BytesIO(data))
    return target


@dataclass
class Tools:
    """Environment for buildah/podman with the deploy scripts' private storage."""

    env: dict[str, str]
    created_images: list[str] = field(default_factory=list)

    def run(self, *argv: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        result = subprocess.run(
            list(argv), env=self.env, capture_output=True, text=True
        )
        if check and result.returncode != 0:
            pytest.fail(
                f"{' '.join(argv)} exited {result.returncode}:\n"
                f"{result.stdout[-2000:]}\n{result.stderr[-4000:]}"
            )
        return result

    def alive(self, container: str) -> bool:
        """Running and never restarted (compose's restart policy hides crashes)."""
        state = self.run(
            "podman",
            "inspect",
            "-f",
            "{{.State.Running}} {{.RestartCount}}",
            container,
            check=False,
        )
        return state.stdout.split() == ["true", "0"]

    def image_exists(self, ref: str) -> bool:
        return (
            self.run(
                "buildah", "inspect", "--type", "image", ref, check=False
            ).returncode
            == 0
        )


@dataclass
class Running:
    base_url: str
    name: str
    startup_s: float
    placement: str = "services"  # CHURN_AB_MODEL_PLACEMENT of the container


TABLES = ("filter", "nat", "mangle")
TOOLS = ("iptables", "ip6tables")


@dataclass(frozen=True)
class Ruleset:
    """``-N`` chains and ``-A`` rules per (tool, table), as ``iptables -S`` prints."""

    chains: frozenset[tuple[str, str, str]]
    rules: tuple[tuple[str, str, str], ...]


def _listing(tool: str, table: str) -> list[str]:
    result = subprocess.run(
        [tool, "-w", "-t", table, "-S"], capture_output=True, text=True, check=False
    )
    # A table the kernel does not have is simply empty for our purpose.
    return result.stdout.splitlines() if result.returncode == 0 else []


def snapshot_firewall() -> Ruleset:
    chains: set[tuple[str, str, str]] = set()
    rules: list[tuple[str, str, str]] = []
    for tool in TOOLS:
        if shutil.which(tool) is None:
            continue
        for table in TABLES:
            for line in _listing(tool, table):
                if line.startswith("-N "):
                    chains.add((tool, table, line[3:]))
                elif line.startswith("-A "):
                    rules.append((tool, table, line[3:]))
    return Ruleset(frozenset(chains), tuple(rules))


def restore_firewall(before: Ruleset) -> Ruleset:
    """Delete rules and chains added since ``before``; return what is left over."""
    now = snapshot_firewall()
    old_rules = set(before.rules)
    # Rules first (they may jump to the new chains), last-added first.
    for tool, table, rule in reversed(now.rules):
        if (tool, table, rule) not in old_rules:
            subprocess.run(
                [tool, "-w", "-t", table, "-D", *shlex.split(rule)],
                capture_output=True,
                check=False,
            )
    for tool, table, chain in sorted(now.chains - before.chains):
        subprocess.run([tool, "-w", "-t", table, "-F", chain], check=False)
        subprocess.run(
            [tool, "-w", "-t", table, "-X", chain], capture_output=True, check=False
        )
    after = snapshot_firewall()
    return Ruleset(
        after.chains - before.chains,
        tuple(r for r in after.rules if r not in old_rules),
    )
