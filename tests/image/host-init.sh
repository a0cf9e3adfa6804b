#!/usr/bin/env bash
# The throw-away deploy host of the image test: runs in the network namespace
# the test made and in a private mount namespace (`nsenter --net=... unshare
# --mount`), gives the host its own runtime and podman state, then becomes
# its sshd. Started and stopped by host_support.py.
#
# Usage: host-init.sh ROOT [KEEP...]
#   ROOT  holds sshd_config and the host's state
#   KEEP  directories under /root that stay visible in the host's own /root
#         (the Python interpreter behind podman-compose may live there)
set -euo pipefail
root="$1"
shift

# Nothing mounted here is seen outside this mount namespace.
mount --make-rprivate /
# Its own /run (podman's runroot, network namespaces, sshd's privsep dir) and
# /dev/shm (podman's lock segment: one store must never free another's locks).
mount -t tmpfs -o mode=0755 churn-ab-host-run /run
mkdir -p /run/sshd /run/lock
mount -t tmpfs -o mode=1777 churn-ab-host-shm /dev/shm
# Its own podman storage, configuration, CNI networks, home and tools.
while read -r source target; do
    mount --bind "$root/$source" "$target"
done <<'MOUNTS'
var-lib-containers /var/lib/containers
etc-containers /etc/containers
etc-cni-net.d /etc/cni/net.d
var-lib-cni /var/lib/cni
var-tmp /var/tmp
usr-local-bin /usr/local/bin
MOUNTS
for keep in "$@"; do
    mkdir -p "$root/home/${keep#/root/}"
    mount --bind "$keep" "$root/home/${keep#/root/}"
done
mount --rbind "$root/home" /root

exec /usr/sbin/sshd -D -e -f "$root/sshd_config"
