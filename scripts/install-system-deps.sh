#!/usr/bin/env bash
# Install the Debian packages the test suite uses, only when one is missing.
# prometheus/promtool: live scrapes and rule tests; jsonnet: dashboards;
# wrk: benchmarks; sqlite3: ledger inspection; postgresql: the shared ledger;
# chromium: the experiment page's real-browser test (headless, DevTools pipe).
# With the argument "image": what building and running the OCI image needs.
set -euo pipefail
packages=(prometheus jsonnet wrk sqlite3 make postgresql chromium)
if [[ "${1:-}" == "image" ]]; then
  packages=(buildah debootstrap podman runc iptables)
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
"${sudo_cmd[@]}" apt-get update -qq
DEBIAN_FRONTEND=noninteractive "${sudo_cmd[@]}" apt-get install -y -qq --no-install-recommends "${missing[@]}"
# Debian starts services on install; the tests start their own on loopback.
for service in prometheus postgresql; do
  if command -v systemctl >/dev/null && systemctl is-active --quiet "$service" 2>/dev/null; then
    "${sudo_cmd[@]}" systemctl stop "$service" || true
  fi
done
