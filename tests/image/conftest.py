"""Fixtures for the slow image test: build (or reuse) the API image, run it
with podman on a loopback port, and leave the host as it was found.

Opt-in: these tests are deselected unless ``-m`` names the ``image`` marker
(``make image-test`` runs ``pytest -m image tests/image``). Set CHURN_AB_IMAGE
to test an image that already exists in the deploy storage instead of
building one; CHURN_AB_KEEP_BASE_IMAGE=1 keeps the base images this run made
(python:3.11-slim and the Debian Prometheus) as a cache for the next run.
"""

from __future__ import annotations

import os
import secrets
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from image_support import (
    DEPLOY,
    PREFIX,
    REPO,
    TIMINGS,
    Running,
    Tools,
    restore_firewall,
    snapshot_firewall,
    timed,
    wait_ready,
)

from harness.processes import free_port


def pytest_collection_modifyitems(
    config: pytest.Config, items: list[pytest.Item]
) -> None:
    if "image" in (config.option.markexpr or ""):
        return
    selected = [i for i in items if i.get_closest_marker("image") is None]
    deselected = [i for i in items if i.get_closest_marker("image") is not None]
    if deselected:
        config.hook.pytest_deselected(items=deselected)
        items[:] = selected


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    if TIMINGS:
        terminalreporter.section("image timings (s)")
        for step, seconds in TIMINGS.items():
            terminalreporter.write_line(f"{step:<28} {seconds:7.1f}")


@pytest.fixture(scope="session")
def tools() -> Iterator[Tools]:
    missing = [t for t in ("buildah", "podman", "iptables") if shutil.which(t) is None]
    if missing:
        pytest.fail(
            f"missing {missing}: apt-get install -y buildah debootstrap podman runc"
        )
    exported = subprocess.run(
        ["bash", "-c", f"source {DEPLOY}/lib/containers-env.sh && env -0"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    env = dict(line.split("=", 1) for line in exported.split("\0") if "=" in line)
    firewall_before = snapshot_firewall()
    cni_state = Path("/var/lib/cni/networks")
    cni_before = set(cni_state.glob("*"))
    tools = Tools(env=env)
    yield tools

    # Leave nothing behind: our containers, volumes, networks and images, and
    # the firewall rules podman added for them.
    def ours(*listing: str) -> list[str]:
        field = "{{.Names}}" if listing[0] == "ps" else "{{.Name}}"
        out = tools.run("podman", *listing, "--format", field, check=False)
        return [n for n in out.stdout.split() if n.startswith(PREFIX)]

    for name in ours("ps", "-a"):
        tools.run("podman", "rm", "-f", "-t", "5", name, check=False)
    for name in ours("volume", "ls"):
        tools.run("podman", "volume", "rm", "-f", name, check=False)
    for name in ours("network", "ls"):
        tools.run("podman", "network", "rm", "-f", name, check=False)
    # CNI's host-local IPAM keeps a directory per network it has served
    # (podman's default network included): drop those this run made.
    for state in set(cni_state.glob("*")) - cni_before:
        shutil.rmtree(state, ignore_errors=True)
    for ref in reversed(tools.created_images):
        tools.run("buildah", "rmi", ref, check=False)
    leftover_rules = restore_firewall(firewall_before)
    leftovers = ours("ps", "-a") + ours("volume", "ls") + ours("network", "ls")
    leftovers += [ref for ref in tools.created_images if tools.image_exists(ref)]
    assert not leftovers, f"left behind: {leftovers}"
    assert not leftover_rules.chains and not leftover_rules.rules, leftover_rules


@pytest.fixture(scope="session")
def models_home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A throwaway BENTOML_HOME with quickly trained churn_v1/churn_v2."""
    from training.sample import find_sample_csv

    sample = find_sample_csv()
    if sample is None:
        pytest.fail("no training sample: set CHURN_DATA or provide ../shared/data")
    home = tmp_path_factory.mktemp("bentoml-home")
    env = os.environ | {"BENTOML_HOME": str(home)}
    timed(
        "train --quick",
        [sys.executable, "-m", "training", "--data", str(sample), "--quick"],
        env,
        cwd=REPO,
    )
    return home


@pytest.fixture(scope="session")
def image(tools: Tools, request: pytest.FixtureRequest) -> str:
    """The image under test: $CHURN_AB_IMAGE, or one built from this checkout."""
    given = os.environ.get("CHURN_AB_IMAGE")
    if given:
        if not tools.image_exists(given):
            pytest.fail(f"CHURN_AB_IMAGE={given} is not in the deploy storage")
        return given

    base = "localhost/python:3.11-slim"
    if not tools.image_exists(base):
        # Built by this run: removed again unless the caller keeps it as a cache.
        if not os.environ.get("CHURN_AB_KEEP_BASE_IMAGE"):
            tools.created_images += [base, "docker.io/library/python:3.11-slim"]
        timed("base image (debootstrap)", [str(DEPLOY / "base-image.sh")], tools.env)

    home = request.getfixturevalue("models_home")
    env = tools.env | {"BENTOML_HOME": str(home), "IMAGE_NAME": PREFIX}
    bento_dir = os.environ.get("CHURN_AB_BENTO_DIR", str(REPO))
    # Register the tags before building so a half-finished build is cleaned too.
    tools.created_images.append(f"localhost/{PREFIX}:latest")
    out = timed(
        "bentoml build + containerize",
        [str(DEPLOY / "build-image.sh"), "--bento-dir", bento_dir],
        env,
    )
    ref = out.strip().splitlines()[-1]
    tools.created_images.insert(0, ref)
    return ref


def _keep_or_remove(tools: Tools, *refs: str) -> None:
    """Images a fixture made: removed at the end unless kept as a cache."""
    if not os.environ.get("CHURN_AB_KEEP_BASE_IMAGE"):
        tools.created_images += list(refs)


@pytest.fixture(scope="session")
def prometheus_image(tools: Tools) -> str:
    """Prometheus from Debian's package (deploy/prometheus-image.sh): the
    compose stack's PROMETHEUS_IMAGE where docker.io cannot be reached."""
    base = "localhost/python:3.11-slim"
    if not tools.image_exists(base):
        _keep_or_remove(tools, base, "docker.io/library/python:3.11-slim")
    before = tools.run("buildah", "images", "--format", "{{.Name}}:{{.Tag}}").stdout
    out = timed("prometheus image", [str(DEPLOY / "prometheus-image.sh")], tools.env)
    ref = out.strip().splitlines()[-1]
    if ref not in before.split():
        _keep_or_remove(tools, ref)
    return ref


@pytest.fixture(scope="session")
def archive(tools: Tools, image: str, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The OCI archive of the image under test, written by `make image-archive`."""
    path = tmp_path_factory.mktemp("archive") / "churn-ab.oci.tar"
    timed(
        "make image-archive",
        [
            "make",
            "-s",
            "image-archive",
            f"DEPLOY_IMAGE={image}",
            f"DEPLOY_ARCHIVE={path}",
        ],
        tools.env,
        cwd=REPO,
    )
    return path


# The image serves each model placement once (issue #13): every test that
# takes `api` runs against both.
@pytest.fixture(scope="session", params=("services", "inline"))
def api(tools: Tools, image: str, request: pytest.FixtureRequest) -> Iterator[Running]:
    """The image running under podman on a free loopback port."""
    placement = str(request.param)
    port = free_port()
    name = f"{PREFIX}-{secrets.token_hex(4)}"
    # The token reaches podman through its environment (`-e NAME` without a
    # value), never through the command line.
    env = tools.env | {
        "CHURN_AB_ADMIN_TOKEN": secrets.token_urlsafe(24),
        "CHURN_AB_MODEL_PLACEMENT": placement,
    }
    timed(
        f"podman run ({placement})",
        [
            "podman",
            "run",
            "-d",
            "--name",
            name,
            "-p",
            f"127.0.0.1:{port}:3000",
            "-e",
            "CHURN_AB_ADMIN_TOKEN",
            "-e",
            "CHURN_AB_MODEL_PLACEMENT",
            image,
        ],
        env,
    )

    base_url = f"http://127.0.0.1:{port}"
    waited = wait_ready(base_url, lambda: tools.alive(name))
    TIMINGS[f"server ready (podman run, {placement})"] = waited
    if waited < 0:
        logs = tools.run("podman", "logs", "--tail", "80", name, check=False)
        pytest.fail(f"{name} never became ready:\n{logs.stdout}\n{logs.stderr}")
    yield Running(base_url, name, waited, placement)
    tools.run("podman", "rm", "-f", "-t", "10", name, check=False)
