#!/usr/bin/env bash
# Make the `python:3.11-slim` base image locally: BentoML's generated
# Dockerfile starts FROM it and no container registry is reachable here.
# A minbase Debian bookworm with the distribution's Python 3.11 stands in for
# the official image. Idempotent: does nothing when the image already exists.
#
# Usage: deploy/base-image.sh [--force]
# Needs (apt): buildah debootstrap
set -euo pipefail
# shellcheck source-path=SCRIPTDIR source=lib/containers-env.sh
source "$(dirname "$0")/lib/containers-env.sh"

BASE_IMAGE="${BASE_IMAGE:-localhost/python:3.11-slim}"
BASE_ALIAS="docker.io/library/python:3.11-slim"
SUITE=bookworm

force=0
[[ "${1:-}" == "--force" ]] && force=1

if ((force == 0)) && buildah inspect --type image "$BASE_IMAGE" >/dev/null 2>&1; then
    # Re-tag anyway: a previous run may have stopped between commit and tag.
    buildah tag "$BASE_IMAGE" "$BASE_ALIAS"
    log "$BASE_IMAGE exists; nothing to do"
    echo "$BASE_IMAGE"
    exit 0
fi

command -v debootstrap >/dev/null || die "debootstrap missing: apt-get install -y debootstrap"
command -v buildah >/dev/null || die "buildah missing: apt-get install -y buildah"

# Use the mirror apt already uses: it is the one this machine can reach.
apt_mirror() {
    local f uri
    for f in /etc/apt/sources.list.d/*.sources; do
        [[ -f "$f" ]] || continue
        # deb822 stanzas: pick the URI of the stanza whose Suites has the bare suite.
        # (awk runs END after `exit`, hence the `done` flag.)
        uri=$(awk -v suite="$SUITE" '
            function hit() { return u != "" && s ~ ("(^| )" suite "( |$)") }
            /^[[:space:]]*$/ { if (hit()) { print u; done = 1; exit } u = ""; s = "" }
            /^URIs:/ { u = $2 }
            /^Suites:/ { $1 = ""; s = $0 " " }
            END { if (!done && hit()) print u }
        ' "$f")
        [[ -n "$uri" ]] && { echo "$uri"; return; }
    done
    for f in /etc/apt/sources.list /etc/apt/sources.list.d/*.list; do
        [[ -f "$f" ]] || continue
        uri=$(awk -v suite="$SUITE" '$1 == "deb" && $0 !~ /\[/ && $3 == suite { print $2; exit }
                                     $1 == "deb" && $2 ~ /^\[/ && $4 == suite { print $3; exit }' "$f")
        [[ -n "$uri" ]] && { echo "$uri"; return; }
    done
    echo "http://deb.debian.org/debian"
}
MIRROR="${MIRROR:-$(apt_mirror)}"
log "mirror: $MIRROR"

rootfs="$DEPLOY_WORK_DIR/rootfs-$SUITE"
rm -rf "$rootfs"
start=$SECONDS
debootstrap --variant=minbase \
    --include=python3,python3-venv,python3-pip,python-is-python3,ca-certificates \
    "$SUITE" "$rootfs" "$MIRROR" >"$DEPLOY_WORK_DIR/debootstrap.log" 2>&1 ||
    die "debootstrap failed; see $DEPLOY_WORK_DIR/debootstrap.log"
log "debootstrap took $((SECONDS - start)) s"

# The Dockerfile BentoML generates runs `pip install uv` with the system pip.
rm -f "$rootfs"/usr/lib/python3*/EXTERNALLY-MANAGED
# Outbound TLS may be re-signed by a local CA: trust what the host trusts.
shopt -s nullglob
extra_certs=(/usr/local/share/ca-certificates/*.crt)
shopt -u nullglob
if ((${#extra_certs[@]})); then
    mkdir -p "$rootfs/usr/local/share/ca-certificates"
    cp "${extra_certs[@]}" "$rootfs/usr/local/share/ca-certificates/"
fi
chroot "$rootfs" update-ca-certificates >/dev/null
# Package lists and caches only make the image bigger.
rm -rf "$rootfs"/var/cache/apt/archives/*.deb "$rootfs"/var/lib/apt/lists/*

ctr=$(buildah from scratch)
trap 'buildah rm "$ctr" >/dev/null 2>&1 || true' EXIT
mnt=$(buildah mount "$ctr")
cp -a "$rootfs"/. "$mnt"/
buildah umount "$ctr" >/dev/null
certs=/etc/ssl/certs/ca-certificates.crt
buildah config \
    --env PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
    --env LANG=C.UTF-8 \
    --env SSL_CERT_FILE="$certs" \
    --env PIP_CERT="$certs" \
    --env REQUESTS_CA_BUNDLE="$certs" \
    --cmd python3 \
    --label org.opencontainers.image.description="Local stand-in for python:3.11-slim (Debian $SUITE minbase)" \
    "$ctr"
buildah commit --quiet "$ctr" "$BASE_IMAGE" >/dev/null
buildah tag "$BASE_IMAGE" "$BASE_ALIAS"
rm -rf "$rootfs"
log "committed $BASE_IMAGE (alias $BASE_ALIAS) in $((SECONDS - start)) s"
echo "$BASE_IMAGE"
