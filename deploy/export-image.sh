#!/usr/bin/env bash
# Export the API image to an archive that `podman load` and `docker load` read.
#
# Usage: deploy/export-image.sh [IMAGE] [FILE]
#   IMAGE default: localhost/churn-ab:latest (the last deploy/build-image.sh);
#         :latest is exported under the versioned tag of the same image,
#         any other name as given
#   FILE  default: deploy/.work/churn-ab.oci.tar
# The archive records the image's versioned name (not :latest), so the host
# that loads it can keep the previous version for a rollback.
set -euo pipefail
# shellcheck source-path=SCRIPTDIR source=lib/containers-env.sh
source "$(dirname "$0")/lib/containers-env.sh"

image="${1:-localhost/${IMAGE_NAME:-churn-ab}:latest}"
file="${2:-$DEPLOY_WORK_DIR/churn-ab.oci.tar}"
mkdir -p "$(dirname "$file")"
rm -f "$file"
start=$SECONDS

if command -v docker >/dev/null && docker info >/dev/null 2>&1; then
    ref=$(docker image inspect --format '{{range .RepoTags}}{{.}} {{end}}' "$image" |
        tr ' ' '\n' | grep -v ':latest$' | head -n1)
    docker save -o "$file" "${ref:-$image}"
else
    ref="$image"
    if [[ "$image" == *:latest ]]; then
        # Resolve :latest to the versioned tag of the same image id.
        id=$(buildah inspect --type image --format '{{.FromImageID}}' "$image")
        ref=$(buildah images --format '{{.Name}}:{{.Tag}} {{.ID}}' --no-trunc |
            awk -v id="$id" '$2 ~ id && $1 !~ /:latest$/ { print $1; exit }')
        ref="${ref:-$image}"
    fi
    buildah push --quiet "$image" "oci-archive:$file:$ref" >&2
fi
log "exported ${ref:-$image} to $file ($(du -h "$file" | cut -f1)) in $((SECONDS - start)) s"
echo "$file"
