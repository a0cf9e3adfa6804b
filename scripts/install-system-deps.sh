#!/usr/bin/env bash
# Install the Debian packages the test suite uses, only when one is missing.
# prometheus/promtool: live scrapes and rule tests; jsonnet: dashboards;
# wrk: benchmarks; sqlite3: ledger inspection; postgresql: the shared ledger;
# chromium: the experiment page's real-browser test (headless, DevTools pipe).
# With the argument "image": what building and running the OCI image needs.
set -euo pipefail
packages=(prometheus jsonnet wrk sqlite3 make postgresql chromium)
if [[ "${1:-}" == "image" ]]; then
  # openssh-server: the throw-away deploy host; catatonit: podman kube play's
  # pause image; dnsname: compose services find each other by name (CNI).
  packages=(buildah debootstrap podman runc iptables openssh-server catatonit
    golang-github-containernetworking-plugin-dnsname)
fi
missing=()
for package in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$package" 2>/dev/null | grep -q "install ok installed" \
    || missing+=("$package")
done
if ((${#missing[@]} == 0)); then
  exit 0
fi
echo "installing: ${missing[*]}"
sudo_cmd=()
[[ $(id -u) -eq 0 ]] || sudo_cmd=(sudo)
# Without systemd, maintainer scripts would start sshd (on every address) and
# the others through invoke-rc.d: forbid service starts while installing.
if [[ ! -e /usr/sbin/policy-rc.d ]]; then
  printf '#!/bin/sh\nexit 101\n' | "${sudo_cmd[@]}" tee /usr/sbin/policy-rc.d >/dev/null
  "${sudo_cmd[@]}" chmod 755 /usr/sbin/policy-rc.d
  trap '"${sudo_cmd[@]}" rm -f /usr/sbin/policy-rc.d' EXIT
fi
"${sudo_cmd[@]}" apt-get update -qq
DEBIAN_FRONTEND=noninteractive "${sudo_cmd[@]}" apt-get install -y -qq --no-install-recommends "${missing[@]}"
# Debian starts services on install; the tests start their own on loopback.
for service in prometheus postgresql ssh; do
  if command -v systemctl >/dev/null && systemctl is-active --quiet "$service" 2>/dev/null; then
    "${sudo_cmd[@]}" systemctl stop "$service" || true
  fi
done
