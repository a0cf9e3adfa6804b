#!/usr/bin/env bash
# Ship the API image to a host over ssh and (re)start the stack there.
#
# Usage: deploy/deploy.sh HOST [--archive FILE] [--dir DIR] [--engine podman|docker]
#                              [--port N] [--dry-run] [--rollback]
#   HOST        ssh destination (user@host or an ~/.ssh/config alias)
#   --archive   image archive from `make image-archive`
#               (default deploy/.work/churn-ab.oci.tar)
#   --dir       directory on the host (default churn-ab, under the ssh user's home)
#   --engine    container engine on the host (default podman; docker uses
#               `docker compose`)
#   --port      API port the host publishes (default 3000; must match its env)
#   --dry-run   print the commands, run nothing
#   --rollback  point the stack back at the image that ran before the last deploy
#
# The host needs: the engine, podman-compose (podman) or the compose plugin
# (docker), curl, and DIR/secrets.env (mode 600) holding at least
# GRAFANA_ADMIN_PASSWORD and CHURN_AB_ADMIN_TOKEN; this script never sends
# secrets. Each deploy records the running image in DIR/deploy/image.current
# and the one before it in DIR/deploy/image.previous.
set -euo pipefail

here="$(cd "$(dirname "$0")" && pwd)"
repo="$(cd "$here/.." && pwd)"

host=""
archive="$here/.work/churn-ab.oci.tar"
dir="churn-ab"
engine="podman"
port=3000
dry_run=0
rollback=0
while (($#)); do
    case "$1" in
    --archive) archive="$2"; shift 2 ;;
    --dir) dir="$2"; shift 2 ;;
    --engine) engine="$2"; shift 2 ;;
    --port) port="$2"; shift 2 ;;
    --dry-run) dry_run=1; shift ;;
    --rollback) rollback=1; shift ;;
    -h | --help) sed -n '2,22p' "$0"; exit 0 ;;
    -*) echo "deploy.sh: unknown option $1" >&2; exit 2 ;;
    *) [[ -z "$host" ]] || { echo "deploy.sh: one HOST only" >&2; exit 2; }; host="$1"; shift ;;
    esac
done
[[ -n "$host" ]] || { sed -n '4,5p' "$0" >&2; exit 2; }
case "$engine" in
podman) compose="podman-compose" ;;
docker) compose="docker compose" ;;
*) echo "deploy.sh: --engine must be podman or docker" >&2; exit 2 ;;
esac
[[ "$port" =~ ^[0-9]+$ ]] || { echo "deploy.sh: --port must be a number" >&2; exit 2; }

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
up="cd $dir/deploy && set -a && . ../secrets.env && set +a && $compose -f compose.yaml up -d"
wait_ready="for i in \$(seq 90); do curl -fsS -o /dev/null http://127.0.0.1:$port/readyz && exit 0; sleep 2; done; echo 'churn-ab not ready' >&2; exit 1"

if ((rollback)); then
    # Swap current and previous, then recreate the API container only.
    remote "set -e; cd $dir/deploy; test -s image.previous || { echo 'no previous image to roll back to' >&2; exit 1; }; prev=\$(cat image.previous); cur=\$(cat image.current); echo \"\$prev\" > image.current; echo \"\$cur\" > image.previous; printf 'CHURN_AB_IMAGE=%s\\nCHURN_AB_PORT=%s\\n' \"\$prev\" $port > .env; echo \"rolled back to \$prev\""
    remote "$up churn-ab"
    remote "$wait_ready"
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
# Record the switch: the image running now becomes the rollback target.
remote "set -e; cd $dir/deploy; if test -s image.current && test \"\$(cat image.current)\" != '$image'; then cp image.current image.previous; fi; echo '$image' > image.current; printf 'CHURN_AB_IMAGE=%s\\nCHURN_AB_PORT=%s\\n' '$image' $port > .env"
remote "$up"
remote "$wait_ready"

cat <<MSG
deployed $image to $host
ports are bound to the host's loopback; reach them through a tunnel:
  ssh -N -L $port:127.0.0.1:$port -L 3001:127.0.0.1:3001 -L 9090:127.0.0.1:9090 $host
  API        http://127.0.0.1:$port  (docs: /docs, health: /health)
  Grafana    http://127.0.0.1:3001  (user admin, password from secrets.env)
  Prometheus http://127.0.0.1:9090
roll back with: deploy/deploy.sh $host --rollback
MSG
