#!/usr/bin/env bash
# Ship the API image to a host over ssh and (re)start the stack there.
#
# Usage: deploy/deploy.sh HOST [--archive FILE] [--dir DIR] [--engine podman|docker]
#                              [--port N] [--services "S ..."] [--timeout SECONDS]
#                              [--rollback-timeout SECONDS] [--dry-run] [--rollback]
#   HOST        ssh destination (user@host or an ~/.ssh/config alias)
#   --archive   image archive from `make image-archive`
#               (default deploy/.work/churn-ab.oci.tar)
#   --dir       directory on the host (default churn-ab, under the ssh user's home)
#   --engine    container engine on the host (default podman; docker uses
#               `docker compose`)
#   --port      API port the host publishes (default 3000; must match its env)
#   --services  compose services to start (default: all of compose.yaml)
#   --timeout   seconds the API may take to pass its health check (default 180)
#   --rollback-timeout
#               seconds the image rolled back to after a failed deploy may take
#               (default 180: it passed before, so a short --timeout meant for
#               the new image must not cut its start short)
#   --dry-run   print the commands, run nothing
#   --rollback  point the stack back at the image that ran before the last deploy
#
# The host needs: the engine, podman-compose (podman) or the compose plugin
# (docker), curl, and DIR/secrets.env (mode 600) holding at least
# GRAFANA_ADMIN_PASSWORD and CHURN_AB_ADMIN_TOKEN; this script never sends
# secrets. An optional DIR/host.env holds the host's other settings (e.g.
# PROMETHEUS_IMAGE). The health check is /readyz, then /health, on the host's
# loopback. A deploy whose image fails it is rolled back to the image that ran
# before, and the script exits 1. DIR/deploy/image.current names the image
# that last passed the health check, DIR/deploy/image.previous the one before.
set -euo pipefail

here="$(cd "$(dirname "$0")" && pwd)"
repo="$(cd "$here/.." && pwd)"

host=""
archive="$here/.work/churn-ab.oci.tar"
dir="churn-ab"
engine="podman"
port=3000
services=""
timeout=180
rollback_timeout=180
dry_run=0
rollback=0
while (($#)); do
    case "$1" in
    --archive) archive="$2"; shift 2 ;;
    --dir) dir="$2"; shift 2 ;;
    --engine) engine="$2"; shift 2 ;;
    --port) port="$2"; shift 2 ;;
    --services) services="${2//,/ }"; shift 2 ;;
    --timeout) timeout="$2"; shift 2 ;;
    --rollback-timeout) rollback_timeout="$2"; shift 2 ;;
    --dry-run) dry_run=1; shift ;;
    --rollback) rollback=1; shift ;;
    -h | --help) sed -n '2,30p' "$0"; exit 0 ;;
    -*) echo "deploy.sh: unknown option $1" >&2; exit 2 ;;
    *) [[ -z "$host" ]] || { echo "deploy.sh: one HOST only" >&2; exit 2; }; host="$1"; shift ;;
    esac
done
[[ -n "$host" ]] || { sed -n '4,6p' "$0" >&2; exit 2; }
case "$engine" in
podman) compose="podman-compose" ;;
docker) compose="docker compose" ;;
*) echo "deploy.sh: --engine must be podman or docker" >&2; exit 2 ;;
esac
[[ "$port" =~ ^[0-9]+$ ]] || { echo "deploy.sh: --port must be a number" >&2; exit 2; }
[[ "$timeout" =~ ^[0-9]+$ ]] || { echo "deploy.sh: --timeout must be a number" >&2; exit 2; }
[[ "$rollback_timeout" =~ ^[0-9]+$ ]] || { echo "deploy.sh: --rollback-timeout must be a number" >&2; exit 2; }
[[ "$services" =~ ^[a-z0-9\ _-]*$ ]] || { echo "deploy.sh: --services takes service names" >&2; exit 2; }

ssh_opts=(-o BatchMode=yes)
[[ -n "${DEPLOY_SSH_OPTS:-}" ]] && read -r -a extra <<<"$DEPLOY_SSH_OPTS" && ssh_opts+=("${extra[@]}")
scp_opts=(-o BatchMode=yes)
[[ -n "${DEPLOY_SCP_OPTS:-}" ]] && read -r -a extra <<<"$DEPLOY_SCP_OPTS" && scp_opts+=("${extra[@]}")

# Print (dry run) or run one command; dry-run lines are copy-pasteable.
run() {
    if ((dry_run)); then
        printf '+'
        printf ' %q' "$@"
        printf '\n'
    else
        "$@"
    fi
}
remote() { run ssh "${ssh_opts[@]}" "$host" "$1"; }

# Remote snippets. $dir is relative to the ssh user's home unless absolute.
secrets="$dir/secrets.env"
# secrets.env and host.env never leave the host: they are read there.
up="cd $dir/deploy && set -a && . ../secrets.env && if test -f ../host.env; then . ../host.env; fi && set +a && $compose -f compose.yaml up -d"
# Ready (every BentoML service up), then healthy (the app's own verdict).
# $1: the budget in seconds (one check every 2 s).
wait_ready() { printf '%s' "for i in \$(seq $((($1 + 1) / 2))); do curl -fsS -o /dev/null http://127.0.0.1:$port/readyz && curl -fsS -o /dev/null http://127.0.0.1:$port/health && exit 0; sleep 2; done; echo 'churn-ab failed its health check (/readyz, /health)' >&2; exit 1"; }
# compose reads the image to run from .env; $1 is a shell expression for it.
use_image() { printf '%s' "printf 'CHURN_AB_IMAGE=%s\\nCHURN_AB_PORT=%s\\n' $1 $port > .env"; }

if ((rollback)); then
    # Swap current and previous, then recreate the API container only.
    # shellcheck disable=SC2016 # "$prev" is expanded on the host
    remote "set -e; cd $dir/deploy; test -s image.previous || { echo 'no previous image to roll back to' >&2; exit 1; }; prev=\$(cat image.previous); cur=\$(cat image.current); echo \"\$prev\" > image.current; echo \"\$cur\" > image.previous; $(use_image '"$prev"'); echo \"rolled back to \$prev\""
    remote "$up churn-ab"
    remote "$(wait_ready "$timeout")"
    echo "rolled back on $host; API: http://127.0.0.1:$port (on $host)"
    exit 0
fi

# The image reference the archive carries (OCI index or docker-save manifest).
image_ref() {
    local ref
    ref=$(tar -xOf "$1" index.json 2>/dev/null |
        grep -o '"org.opencontainers.image.ref.name" *: *"[^"]*"' | head -n1 | cut -d'"' -f4) || true
    if [[ -z "$ref" ]]; then
        ref=$(tar -xOf "$1" manifest.json 2>/dev/null |
            grep -o '"RepoTags" *: *\[ *"[^"]*"' | head -n1 | cut -d'"' -f4) || true
    fi
    echo "$ref"
}
[[ -f "$archive" ]] || { echo "deploy.sh: no archive at $archive (make image-archive)" >&2; exit 1; }
image="$(image_ref "$archive")"
[[ -n "$image" && "$image" != *:latest ]] ||
    { echo "deploy.sh: $archive names no versioned image (got '${image}')" >&2; exit 1; }
remote_archive="$dir/images/$(basename "$archive")"

remote "test -s $secrets || { echo 'create $secrets (mode 600) with GRAFANA_ADMIN_PASSWORD and CHURN_AB_ADMIN_TOKEN' >&2; exit 1; }; mkdir -p $dir/deploy $dir/grafana $dir/images"
# compose.yaml mounts ../prometheus and ../grafana/*: keep the repo layout.
run scp "${scp_opts[@]}" "$repo/deploy/compose.yaml" "$host:$dir/deploy/compose.yaml"
run scp "${scp_opts[@]}" -r "$repo/prometheus" "$host:$dir/"
run scp "${scp_opts[@]}" -r "$repo/grafana/provisioning" "$repo/grafana/dashboards" "$host:$dir/grafana/"
run scp "${scp_opts[@]}" "$archive" "$host:$remote_archive"
remote "$engine load -i $remote_archive && rm -f $remote_archive"
remote "cd $dir/deploy && $(use_image "'$image'")"
if ! { remote "$up${services:+ $services}" && remote "$(wait_ready "$timeout")"; }; then
    # The image that passed the health check last is still image.current:
    # run it again. Nothing is recorded for the image that failed.
    echo "deploy.sh: $image failed on $host; rolling back" >&2
    # shellcheck disable=SC2016 # $(cat image.current) is expanded on the host
    remote "set -e; cd $dir/deploy; test -s image.current || { echo 'no image ran before: nothing to roll back to' >&2; exit 1; }; $(use_image '"$(cat image.current)"'); echo \"rolling back to \$(cat image.current)\""
    remote "$up churn-ab"
    remote "$(wait_ready "$rollback_timeout")"
    echo "deploy.sh: $image was not deployed; $host runs the image in $dir/deploy/image.current again" >&2
    exit 1
fi
# Healthy: the image that ran until now becomes the rollback target.
remote "set -e; cd $dir/deploy; if test -s image.current && test \"\$(cat image.current)\" != '$image'; then cp image.current image.previous; fi; echo '$image' > image.current"

cat <<MSG
deployed $image to $host
ports are bound to the host's loopback; reach them through a tunnel:
  ssh -N -L $port:127.0.0.1:$port -L 3001:127.0.0.1:3001 -L 9090:127.0.0.1:9090 $host
  API        http://127.0.0.1:$port  (docs: /docs, health: /health)
  Grafana    http://127.0.0.1:3001  (user admin, password from secrets.env)
  Prometheus http://127.0.0.1:9090
roll back with: deploy/deploy.sh $host --rollback
MSG
