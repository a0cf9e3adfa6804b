# shellcheck shell=bash
# Sourced by the deploy scripts: gives buildah/podman a private storage and
# runtime configuration under deploy/.work so nothing touches the host's
# /var/lib/containers and every script sees the same images.
#
# Overridable: DEPLOY_WORK_DIR (default deploy/.work).

DEPLOY_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
REPO_ROOT="$(cd "$DEPLOY_DIR/.." && pwd)"
DEPLOY_WORK_DIR="${DEPLOY_WORK_DIR:-$DEPLOY_DIR/.work}"
export DEPLOY_DIR REPO_ROOT DEPLOY_WORK_DIR

mkdir -p "$DEPLOY_WORK_DIR/storage" "$DEPLOY_WORK_DIR/run"

# overlay: vfs copies every layer in full (the API image is ~1 GB).
cat >"$DEPLOY_WORK_DIR/storage.conf" <<CONF
[storage]
driver = "overlay"
graphroot = "$DEPLOY_WORK_DIR/storage"
runroot = "$DEPLOY_WORK_DIR/run"
CONF

# The container runtime may not raise rlimits on this kind of host, and crun
# refuses its hybrid cgroup layout; runc works.
cat >"$DEPLOY_WORK_DIR/containers.conf" <<CONF
[containers]
default_ulimits = ["nofile=20000:20000", "nproc=4096:4096"]

[engine]
runtime = "runc"
CONF

export CONTAINERS_STORAGE_CONF="$DEPLOY_WORK_DIR/storage.conf"
export CONTAINERS_CONF="$DEPLOY_WORK_DIR/containers.conf"
# chroot isolation shares the host network, so build steps reach the package
# mirrors without a bridge or slirp.
export BUILDAH_ISOLATION=chroot

log() { printf '%s %s\n' "[$(basename "$0")]" "$*" >&2; }
die() { log "error: $*"; exit 1; }
