"""deploy/deploy.sh: the dry run prints the whole command sequence and runs
nothing; the host-side snippets it sends keep a working rollback record."""

from __future__ import annotations

import json
import os
import shlex
import subprocess
import tarfile
from io import BytesIO
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
SCRIPT = REPO / "deploy" / "deploy.sh"


def _oci_archive(path: Path, ref: str) -> Path:
    """A minimal OCI layout tar whose index names ``ref`` (as buildah push writes)."""
    index = {
        "schemaVersion": 2,
        "manifests": [
            {
                "mediaType": "application/vnd.oci.image.manifest.v1+json",
                "digest": "sha256:" + "0" * 64,
                "size": 1,
                "annotations": {"org.opencontainers.image.ref.name": ref},
            }
        ],
    }
    with tarfile.open(path, "w") as tar:
        for name, body in (
            ("oci-layout", b'{"imageLayoutVersion":"1.0.0"}'),
            ("index.json", json.dumps(index).encode()),
        ):
            info = tarfile.TarInfo(name)
            info.size = len(body)
            tar.addfile(info, BytesIO(body))
    return path


@pytest.fixture
def trap_bin(tmp_path: Path) -> Path:
    """ssh/scp stand-ins that record any call: a dry run must make none."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    for tool in ("ssh", "scp"):
        stub = bin_dir / tool
        stub.write_text(f'#!/bin/sh\necho "{tool} $*" >> "{tmp_path}/calls"\nexit 1\n')
        stub.chmod(0o755)
    return bin_dir


def _run(*args: str, trap_bin: Path) -> subprocess.CompletedProcess[str]:
    env = os.environ | {"PATH": f"{trap_bin}:{os.environ['PATH']}"}
    return subprocess.run(
        [str(SCRIPT), *args], capture_output=True, text=True, env=env, check=False
    )


def _commands(stdout: str) -> list[list[str]]:
    return [
        shlex.split(line[2:]) for line in stdout.splitlines() if line.startswith("+ ")
    ]


def test_dry_run_prints_the_deploy_sequence_and_runs_nothing(
    tmp_path: Path, trap_bin: Path
) -> None:
    archive = _oci_archive(tmp_path / "churn-ab.oci.tar", "localhost/churn-ab:v42")
    result = _run(
        "ops@prod-1", "--archive", str(archive), "--dry-run", trap_bin=trap_bin
    )
    assert result.returncode == 0, result.stderr
    assert not (tmp_path / "calls").exists(), (tmp_path / "calls").read_text()

    commands = _commands(result.stdout)
    programs = [c[0] for c in commands]
    assert programs == ["ssh", "scp", "scp", "scp", "scp", *["ssh"] * 5]
    for command in commands:
        assert "ops@prod-1" in command or any(
            a.startswith("ops@prod-1:") for a in command
        )
        assert "BatchMode=yes" in command
    remote = [c[-1] for c in commands if c[0] == "ssh"]
    copies = [c for c in commands if c[0] == "scp"]

    assert "secrets.env" in remote[0] and "mkdir -p" in remote[0]
    sources = [Path(a) for c in copies for a in c[1:-1] if a.startswith("/")]
    assert REPO / "deploy" / "compose.yaml" in sources
    assert REPO / "prometheus" in sources
    assert REPO / "grafana" / "provisioning" in sources
    assert REPO / "grafana" / "dashboards" in sources
    assert all(src.exists() for src in sources)
    # The archive is copied, then loaded from exactly where it was copied to.
    archive_copy = next(c for c in copies if c[-2] == str(archive))
    remote_path = archive_copy[-1].split(":", 1)[1]
    assert remote[1].startswith(f"podman load -i {remote_path}")
    assert "CHURN_AB_IMAGE" in remote[2] and "localhost/churn-ab:v42" in remote[2]
    assert "podman-compose -f compose.yaml up -d" in remote[3]
    assert "/readyz" in remote[4] and "/health" in remote[4]
    # Recorded only once the new image passed its health check.
    assert "localhost/churn-ab:v42" in remote[5] and "image.previous" in remote[5]
    assert "http://127.0.0.1:3001" in result.stdout  # Grafana URL is printed


def test_docker_engine_uses_docker_load_and_compose_plugin(
    tmp_path: Path, trap_bin: Path
) -> None:
    archive = _oci_archive(tmp_path / "a.tar", "churn-ab:v7")
    result = _run(
        "h",
        "--archive",
        str(archive),
        "--engine",
        "docker",
        "--dry-run",
        trap_bin=trap_bin,
    )
    assert result.returncode == 0, result.stderr
    remote = [c[-1] for c in _commands(result.stdout) if c[0] == "ssh"]
    assert remote[1].startswith("docker load -i ")
    assert "docker compose -f compose.yaml up -d" in remote[3]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        ((), "Usage"),
        (("h", "--engine", "lxc"), "--engine"),
        (("h", "--archive", "/nonexistent.tar"), "no archive"),
    ],
)
def test_bad_invocations_fail(
    args: tuple[str, ...], message: str, trap_bin: Path
) -> None:
    result = _run(*args, "--dry-run", trap_bin=trap_bin)
    assert result.returncode != 0
    assert message in result.stderr


def test_unversioned_archive_is_refused(tmp_path: Path, trap_bin: Path) -> None:
    # A rollback needs two distinct tags; :latest would overwrite the previous one.
    archive = _oci_archive(tmp_path / "a.tar", "localhost/churn-ab:latest")
    result = _run("h", "--archive", str(archive), "--dry-run", trap_bin=trap_bin)
    assert result.returncode != 0
    assert "versioned" in result.stderr


def _host_snippet(host_dir: Path, *args: str, index: int, trap_bin: Path) -> str:
    result = _run("h", "--dir", str(host_dir), "--dry-run", *args, trap_bin=trap_bin)
    assert result.returncode == 0, result.stderr
    return [c[-1] for c in _commands(result.stdout) if c[0] == "ssh"][index]


def test_record_and_rollback_snippets_swap_images_on_the_host(
    tmp_path: Path, trap_bin: Path
) -> None:
    """Runs the exact shell the script would send over ssh, here in a temp dir."""
    host_dir = tmp_path / "host"
    (host_dir / "deploy").mkdir(parents=True)
    state = host_dir / "deploy"

    def deploy(ref: str) -> None:
        archive = _oci_archive(tmp_path / f"{ref.rsplit(':', 1)[1]}.tar", ref)
        for index in (2, 5):  # point .env at the image; record it once healthy
            snippet = _host_snippet(
                host_dir, "--archive", str(archive), index=index, trap_bin=trap_bin
            )
            subprocess.run(["sh", "-c", snippet], check=True, cwd="/")

    def rollback() -> subprocess.CompletedProcess[str]:
        snippet = _host_snippet(host_dir, "--rollback", index=0, trap_bin=trap_bin)
        return subprocess.run(
            ["sh", "-c", snippet], capture_output=True, text=True, cwd="/", check=False
        )

    deploy("localhost/churn-ab:one")
    assert (state / "image.current").read_text().strip() == "localhost/churn-ab:one"
    assert not (state / "image.previous").exists()
    refused = rollback()
    assert refused.returncode != 0 and "no previous image" in refused.stderr

    deploy("localhost/churn-ab:two")
    deploy("localhost/churn-ab:two")  # a re-deploy must not lose the rollback target
    assert (state / "image.previous").read_text().strip() == "localhost/churn-ab:one"
    assert "CHURN_AB_IMAGE=localhost/churn-ab:two" in (state / ".env").read_text()

    assert rollback().returncode == 0
    assert (state / "image.current").read_text().strip() == "localhost/churn-ab:one"
    assert (state / "image.previous").read_text().strip() == "localhost/churn-ab:two"
    env_lines = (state / ".env").read_text().splitlines()
    assert env_lines == ["CHURN_AB_IMAGE=localhost/churn-ab:one", "CHURN_AB_PORT=3000"]


@pytest.fixture
def local_host(tmp_path: Path) -> tuple[Path, dict[str, str]]:
    """A "host" that is a directory here: ssh runs the remote command in it,
    scp copies into it, and the engine's tools only record what they are
    asked. curl (the health check) fails while .env names a broken image."""
    home = tmp_path / "home"
    (home / "churn-ab").mkdir(parents=True)
    (home / "churn-ab" / "secrets.env").write_text("CHURN_AB_ADMIN_TOKEN=t\n")
    bin_dir = tmp_path / "host-bin"
    bin_dir.mkdir()
    stubs = {
        # The last argument is the remote command (after the destination).
        "ssh": f'for a; do last="$a"; done; cd "{home}" && exec sh -c "$last"',
        "podman": f'echo "podman $*" >> "{tmp_path}/calls"',
        "podman-compose": f'echo "compose $*" >> "{tmp_path}/calls"',
        "curl": f'! grep -q broken "{home}/churn-ab/deploy/.env"',
        "sleep": "true",
    }
    for name, body in stubs.items():
        stub = bin_dir / name
        stub.write_text(f"#!/bin/sh\n{body}\n")
        stub.chmod(0o755)
    # scp: copy every local source into the host path after the last ':'.
    scp = bin_dir / "scp"
    scp.write_text(
        "#!/bin/sh\n"
        'for a; do last="$a"; done\n'
        f'dst="{home}/${{last#*:}}"\n'
        'for a; do [ "$a" = "$last" ] || { [ -e "$a" ] && cp -r "$a" "$dst"; }; done\n'
        "true\n"
    )
    scp.chmod(0o755)
    env = os.environ | {"PATH": f"{bin_dir}:{os.environ['PATH']}"}
    return home, env


def test_a_broken_image_is_rolled_back_and_not_recorded(
    tmp_path: Path, local_host: tuple[Path, dict[str, str]]
) -> None:
    home, env = local_host
    state = home / "churn-ab" / "deploy"

    def deploy(ref: str) -> subprocess.CompletedProcess[str]:
        archive = _oci_archive(tmp_path / f"{ref.rsplit(':', 1)[1]}.tar", ref)
        return subprocess.run(
            [str(SCRIPT), "h", "--archive", str(archive), "--timeout", "2"],
            capture_output=True,
            text=True,
            env=env,
            check=False,
        )

    first_broken = deploy("localhost/churn-ab:broken-0")
    assert first_broken.returncode == 1
    assert "nothing to roll back to" in first_broken.stderr
    assert not (state / "image.current").exists()

    assert deploy("localhost/churn-ab:one").returncode == 0
    assert deploy("localhost/churn-ab:two").returncode == 0
    broken = deploy("localhost/churn-ab:broken-3")
    assert broken.returncode == 1, broken.stdout + broken.stderr
    assert "localhost/churn-ab:broken-3 failed" in broken.stderr
    assert "rolling back to localhost/churn-ab:two" in broken.stdout
    # The broken image never ran healthy: the record is as before it.
    assert (state / "image.current").read_text().strip() == "localhost/churn-ab:two"
    assert (state / "image.previous").read_text().strip() == "localhost/churn-ab:one"
    assert "CHURN_AB_IMAGE=localhost/churn-ab:two" in (state / ".env").read_text()
    compose_calls = [
        line
        for line in (tmp_path / "calls").read_text().splitlines()
        if line.startswith("compose")
    ]
    # The failed deploy's `up -d`, then the rollback's `up -d churn-ab`.
    assert compose_calls[-2:] == [
        "compose -f compose.yaml up -d",
        "compose -f compose.yaml up -d churn-ab",
    ]


def test_the_rollback_gets_its_own_budget_not_the_failed_images(
    tmp_path: Path, local_host: tuple[Path, dict[str, str]]
) -> None:
    """A short --timeout judges the new image only: the image rolled back to
    may take longer to start (a container start is 20-50 s), and the script
    still waits for it and says it runs again."""
    home, env = local_host
    attempts = tmp_path / "attempts"
    # Healthy only from the third check after each start: longer than the
    # broken deploy's --timeout 2 allows (one check), within the rollback's.
    (tmp_path / "host-bin" / "curl").write_text(
        "#!/bin/sh\n"
        f'grep -q broken "{home}/churn-ab/deploy/.env" && exit 1\n'
        f'echo x >> "{attempts}"\n'
        f'[ "$(wc -l < "{attempts}")" -ge 3 ]\n'
    )
    (tmp_path / "host-bin" / "podman-compose").write_text(
        f'#!/bin/sh\necho "compose $*" >> "{tmp_path}/calls"\nrm -f "{attempts}"\n'
    )

    def deploy(ref: str, *options: str) -> subprocess.CompletedProcess[str]:
        archive = _oci_archive(tmp_path / f"{ref.rsplit(':', 1)[1]}.tar", ref)
        return subprocess.run(
            [str(SCRIPT), "h", "--archive", str(archive), *options],
            capture_output=True,
            text=True,
            env=env,
            check=False,
        )

    assert deploy("localhost/churn-ab:one", "--timeout", "10").returncode == 0
    broken = deploy("localhost/churn-ab:broken-2", "--timeout", "2")
    assert broken.returncode == 1, broken.stdout + broken.stderr
    assert "runs the image in churn-ab/deploy/image.current again" in broken.stderr
    # Only the broken image failed its check; the rollback passed its own.
    assert broken.stderr.count("failed its health check") == 1

    # The rollback's own budget is a setting, and it is kept: 2 s is one check.
    short = deploy(
        "localhost/churn-ab:broken-3", "--timeout", "2", "--rollback-timeout", "2"
    )
    assert short.returncode == 1
    assert short.stderr.count("failed its health check") == 2
    assert "again" not in short.stderr


def test_a_rollback_timeout_that_is_not_a_number_is_refused(trap_bin: Path) -> None:
    result = _run("h", "--dry-run", "--rollback-timeout", "soon", trap_bin=trap_bin)
    assert result.returncode == 2
    assert "--rollback-timeout must be a number" in result.stderr


def test_help_is_the_whole_header_and_no_code(trap_bin: Path) -> None:
    shown = _run("--help", trap_bin=trap_bin)
    assert shown.returncode == 0
    assert "--rollback-timeout" in shown.stdout
    assert shown.stdout.rstrip().endswith("the one before.")
    assert "set -euo" not in shown.stdout
    usage = _run(trap_bin=trap_bin)
    assert usage.returncode == 2
    assert usage.stderr.startswith("# Usage:")
    assert usage.stderr.rstrip().endswith("[--dry-run] [--rollback]")
