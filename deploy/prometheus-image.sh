#!/usr/bin/env bash
# Make a Prometheus image locally from Debian's `prometheus` package, for the
# compose stack on machines that cannot pull docker.io/prom/prometheus.
# It starts from the debootstrap base of deploy/base-image.sh (made first if
# missing) and installs the package from the mirror apt already uses.
# Idempotent: does nothing when the image already exists.
#
# Usage: deploy/prometheus-image.sh [--force]
# Prints the image reference: localhost/prometheus:<Debian package version>.
# Run the stack with it: PROMETHEUS_IMAGE=<that reference> podman-compose ...
# Needs (apt): buildah debootstrap
set -euo pipefail
# shellcheck source-path=SCRIPTDIR source=lib/containers-env.sh
source "$(dirname "$0")/lib/containers-env.sh"

BASE_IMAGE="${BASE_IMAGE:-localhost/python:3.11-slim}"
NAME="${PROMETHEUS_IMAGE_NAME:-localhost/prometheus}"

force=0
[[ "${1:-}" == "--force" ]] && force=1

# The tag is the package version, so the image says which Prometheus it holds.
existing=$(buildah images --format '{{.Name}}:{{.Tag}}' | grep -m1 "^$NAME:" || true)
if ((force == 0)) && [[ -n "$existing" ]]; then
    log "$existing exists; nothing to do"
    echo "$existing"
    exit 0
fi

start=$SECONDS
"$DEPLOY_DIR/base-image.sh" >/dev/null
ctr=$(buildah from --pull-never "$BASE_IMAGE")
trap 'buildah rm "$ctr" >/dev/null 2>&1 || true' EXIT
# No init system in a build container: keep maintainer scripts from starting
# the service they install.
buildah run "$ctr" -- sh -c 'printf "#!/bin/sh\nexit 101\n" > /usr/sbin/policy-rc.d && chmod +x /usr/sbin/policy-rc.d'
# wget: the compose health check (the upstream image has it from busybox).
buildah run "$ctr" -- sh -c 'apt-get update -qq &&
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends prometheus wget >/dev/null &&
    rm -rf /var/lib/apt/lists/* /var/cache/apt/archives/*.deb /usr/sbin/policy-rc.d &&
    install -d -o prometheus -g prometheus /prometheus'
# shellcheck disable=SC2016 # a dpkg-query format, not a shell expansion
version=$(buildah run "$ctr" -- dpkg-query -W -f '${Version}' prometheus)
# A tag cannot hold "+" or "~".
tag="$(tr -c 'A-Za-z0-9_.\n-' '-' <<<"$version")"
buildah config \
    --user prometheus \
    --workingdir /prometheus \
    --entrypoint '["/usr/bin/prometheus"]' \
    --cmd '["--config.file=/etc/prometheus/prometheus.yml", "--storage.tsdb.path=/prometheus"]' \
    --port 9090 \
    --volume /prometheus \
    --label org.opencontainers.image.description="Prometheus $version from Debian's package (local stand-in for prom/prometheus)" \
    "$ctr"
buildah commit --quiet "$ctr" "$NAME:$tag" >/dev/null
log "committed $NAME:$tag in $((SECONDS - start)) s"
echo "$NAME:$tag"
