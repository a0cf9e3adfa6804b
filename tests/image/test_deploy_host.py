"""deploy/deploy.sh for real, against a throw-away host reached over ssh.

The host is sshd in a network namespace of its own (host_support.py), with
key-only login for a key made here and its own podman storage, so it starts
with no image at all. The test plays its administrator once (secrets.env,
host.env, and the Prometheus image a real host would pull from docker.io),
then only runs deploy.sh and reads what the host says:

1. deploy image A: API and Prometheus come up; /health and /predict answer
   through an ssh tunnel to the host's address; Prometheus there scrapes it;
2. deploy A2 (A plus a label): image.previous becomes A;
3. deploy B, broken (A that starts and never serves): its health check fails, the
   script rolls back to A2 by itself and exits 1; the record is unchanged;
4. ``--rollback``: back to A, and the record swaps;
5. no secret appears in anything the script printed or ran.

A2's and B's archives are made from A's: the same compressed layers and a
new config, what ``buildah commit`` would make of A with those settings, so
no gigabyte is exported or loaded twice.
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from host_support import Netns, TestHost, start_test_host
from image_support import (
    DEPLOY,
    TIMINGS,
    Tools,
    check_prediction,
    derived_archive,
)

from churn_features.schema import EXAMPLE_CUSTOMER
from harness.processes import free_port

# Image builds and exports are slow on 2 busy cores: more than the default 600 s.
pytestmark = [pytest.mark.image, pytest.mark.timeout(1500)]

SCRIPT = DEPLOY / "deploy.sh"
HOST_DIR = "churn-ab"  # deploy.sh's default, under the host user's home
API_CONTAINER = "churn-ab_churn-ab_1"  # compose project `churn-ab`
REVISION_LABEL = "org.churn-ab.test.revision"


@pytest.fixture(scope="module")
def host() -> Iterator[TestHost]:
    netns = Netns.create("host", 19)
    # Under deploy/.work: the same disk as the image store, and not under
    # any directory the host hides behind its own mounts.
    work = DEPLOY / ".work"
    work.mkdir(exist_ok=True)
    root = Path(tempfile.mkdtemp(prefix="testhost-", dir=work))
    try:
        test_host = start_test_host(netns, root)
    except BaseException:
        netns.delete()
        shutil.rmtree(root, ignore_errors=True)
        raise
    yield test_host
    outlived = test_host.stop()
    shutil.rmtree(root, ignore_errors=True)
    assert not netns.exists(), f"network namespace {netns.name} left behind"
    assert not outlived, f"processes outlived the test host: {outlived}"


def _export(tools: Tools, image: str, path: Path) -> Path:
    """An OCI archive like export-image.sh writes, but with uncompressed
    layers: these small images are test fixtures, not worth gzip's time."""
    started = time.monotonic()
    tools.run(
        "buildah",
        "push",
        "--quiet",
        "--disable-compression",
        image,
        f"oci-archive:{path}:{image}",
    )
    TIMINGS[f"export {path.stem}"] = time.monotonic() - started
    return path


class Deployer:
    """Runs deploy.sh as a user would, keeping everything it printed and,
    through bash's xtrace, every command it ran."""

    def __init__(self, host: TestHost, env: dict[str, str]) -> None:
        self.host = host
        self.env = env
        self.transcript: list[str] = []

    def __call__(
        self, *args: str, timeout: int = 180
    ) -> subprocess.CompletedProcess[str]:
        options = " ".join(self.host.ssh_options())
        env = self.env | {"DEPLOY_SSH_OPTS": options, "DEPLOY_SCP_OPTS": options}
        started = time.monotonic()
        result = subprocess.run(
            ["bash", "-x", str(SCRIPT), self.host.destination, *args],
            env=env,
            capture_output=True,
            text=True,
            timeout=600,
        )
        step = "deploy.sh --rollback"
        if "--archive" in args:
            step = f"deploy.sh {Path(args[args.index('--archive') + 1]).stem}"
        TIMINGS[step] = TIMINGS.get(step, 0.0) + time.monotonic() - started
        self.transcript += [result.stdout, result.stderr]
        return result


def _record(host: TestHost, name: str) -> str | None:
    path = host.home / HOST_DIR / "deploy" / name
    return path.read_text().strip() if path.exists() else None


def _running_image(host: TestHost) -> str:
    out = host.ssh(f"podman inspect --format '{{{{.ImageName}}}}' {API_CONTAINER}")
    return out.stdout.strip()


def _image(host: TestHost, ref: str) -> tuple[str, dict[str, str]]:
    """Id and labels of an image on the host."""
    out = host.ssh(
        f"podman image inspect --format '{{{{.Id}}}} {{{{json .Labels}}}}' {ref}"
    ).stdout
    image_id, labels = out.split(maxsplit=1)
    return image_id, dict(json.loads(labels))


def _wait_healthy(base_url: str, deadline_s: float = 120) -> None:
    started = time.monotonic()
    while time.monotonic() - started < deadline_s:
        try:
            if httpx.get(f"{base_url}/health", timeout=5).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(1)
    pytest.fail(f"{base_url}/health never answered 200")


def test_deploy_rollback_and_secrets_on_a_real_host(
    tools: Tools,
    host: TestHost,
    image: str,
    archive: Path,
    prometheus_image: str,
    tmp_path: Path,
) -> None:
    # The host starts empty: nothing of the build side's store is visible.
    assert host.ssh("podman images --format '{{.Repository}}'").stdout.strip() == ""

    # Once, as the host's administrator (docs/deploy.md, "Deploy to a host").
    token = secrets.token_urlsafe(24)
    grafana_password = secrets.token_urlsafe(16)
    host_dir = host.home / HOST_DIR
    host_dir.mkdir()
    secrets_env = host_dir / "secrets.env"
    secrets_env.touch(mode=0o600)
    secrets_env.write_text(
        f"GRAFANA_ADMIN_PASSWORD={grafana_password}\nCHURN_AB_ADMIN_TOKEN={token}\n"
    )
    # A host with registry access pulls prom/prometheus; this one is given
    # the Debian-built stand-in and told its name.
    (host_dir / "host.env").write_text(f"PROMETHEUS_IMAGE={prometheus_image}\n")
    prometheus_archive = _export(tools, prometheus_image, tmp_path / "prometheus.tar")
    host.scp(prometheus_archive, "/var/tmp/prometheus.tar")
    host.ssh("podman load -q -i /var/tmp/prometheus.tar && rm /var/tmp/prometheus.tar")

    # A second good image, A with one more label, and a broken one, A that
    # starts and never serves. Their archives reuse A's compressed layers as
    # they are, so the host loads only their configs.
    started = time.monotonic()
    good2, broken = f"{image}-rev2", f"{image}-broken"
    good2_archive = derived_archive(
        archive,
        good2,
        tmp_path / "rev2.tar",
        lambda config: config.setdefault("Labels", {}).update({REVISION_LABEL: "2"}),
    )
    never_serves = ["/bin/sh", "-c", "trap 'exit 0' TERM; while :; do sleep 1; done"]
    broken_archive = derived_archive(
        archive,
        broken,
        tmp_path / "broken.tar",
        lambda config: config.update(Entrypoint=never_serves, Cmd=None),
    )
    TIMINGS["derive rev2 and broken archives"] = time.monotonic() - started
    archives = {
        image: archive,
        good2: good2_archive,
        broken: broken_archive,
    }

    # The deployer's own shell holds the same secrets, as an operator's might:
    # the script must still never send them.
    deploy = Deployer(
        host,
        os.environ
        | {"CHURN_AB_ADMIN_TOKEN": token, "GRAFANA_ADMIN_PASSWORD": grafana_password},
    )
    stack = ["--services", "churn-ab prometheus"]
    api_port, prometheus_port = free_port(), free_port()
    host.tunnel({api_port: 3000, prometheus_port: 9090})
    api = f"http://127.0.0.1:{api_port}"
    customer = dict(EXAMPLE_CUSTOMER)

    # 1. First deploy.
    first = deploy("--archive", str(archives[image]), *stack)
    assert first.returncode == 0, first.stdout + first.stderr
    assert f"deployed {image}" in first.stdout
    _wait_healthy(api)
    check_prediction(httpx.post(f"{api}/predict", json=customer, timeout=30))
    assert _running_image(host) == image
    assert (_record(host, "image.current"), _record(host, "image.previous")) == (
        image,
        None,
    )
    # Prometheus on the host scrapes the API by its service name.
    deadline = time.monotonic() + 60
    while True:
        targets = httpx.get(
            f"http://127.0.0.1:{prometheus_port}/api/v1/targets", timeout=10
        ).json()["data"]["activeTargets"]
        api_targets = [t for t in targets if t["labels"]["job"] == "churn-ab"]
        if api_targets and api_targets[0]["health"] == "up":
            break
        assert time.monotonic() < deadline, api_targets
        time.sleep(2)
    # The token in the host's secrets.env reached the API; nothing else did.
    admin = httpx.post(
        f"{api}/ab-test/weights",
        json={"weights": {"v1": 0.5, "v2": 0.5}, "reason": "deploy test"},
        headers={"Authorization": f"Bearer {token}"},
        timeout=30,
    )
    assert admin.status_code == 200, admin.text

    # 2. A second good image: the first becomes the rollback target.
    second = deploy("--archive", str(archives[good2]), *stack)
    assert second.returncode == 0, second.stdout + second.stderr
    assert _running_image(host) == good2
    # A distinct image, not A under a second name: its own id, one more label.
    (id_a, labels_a), (id_2, labels_2) = (_image(host, ref) for ref in (image, good2))
    assert id_a != id_2
    assert labels_2 == labels_a | {REVISION_LABEL: "2"}
    assert (_record(host, "image.current"), _record(host, "image.previous")) == (
        good2,
        image,
    )

    # 3. A broken image: health check fails, the script rolls back by itself.
    failed = deploy("--archive", str(archives[broken]), *stack, "--timeout", "20")
    assert failed.returncode == 1, failed.stdout + failed.stderr
    assert f"{broken} failed" in failed.stderr
    assert f"rolling back to {good2}" in failed.stdout
    # The script itself saw the rolled-back image healthy (its own budget).
    assert "image.current again" in failed.stderr, failed.stderr
    assert _running_image(host) == good2
    _wait_healthy(api)
    check_prediction(httpx.post(f"{api}/predict", json=customer, timeout=30))
    assert (_record(host, "image.current"), _record(host, "image.previous")) == (
        good2,
        image,
    )

    # 4. Rollback on request: back to the first image, and the record swaps.
    rolled = deploy("--rollback")
    assert rolled.returncode == 0, rolled.stdout + rolled.stderr
    assert f"rolled back to {image}" in rolled.stdout
    assert _running_image(host) == image
    _wait_healthy(api)
    check_prediction(httpx.post(f"{api}/predict", json=customer, timeout=30))
    assert (_record(host, "image.current"), _record(host, "image.previous")) == (
        image,
        good2,
    )

    # 5. Secrets never left the deployer: not in anything the script printed
    # or ran (bash -x traces every command, ssh's remote commands included),
    # nor in any file it copied to the host.
    transcript = "\n".join(deploy.transcript)
    assert "+ ssh " in transcript and "+ scp " in transcript  # the trace is there
    for secret in (token, grafana_password):
        assert secret not in transcript
        for path in host_dir.rglob("*"):
            if path.is_file() and path != secrets_env:
                assert secret not in path.read_text(errors="replace"), path
