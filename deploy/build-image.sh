#!/usr/bin/env bash
# Build the churn-ab Bento and containerize it into an OCI image.
#
# Usage: deploy/build-image.sh [--bento-dir DIR]
#   --bento-dir DIR  directory holding bentofile.yaml (default: the repo root)
# Env:   IMAGE_NAME   image repository (default: churn-ab)
#        BENTOML_HOME the store holding models churn_v1/churn_v2 (bentoml's default)
# Prints the image reference (localhost/churn-ab:<bento version>) on stdout,
# and tags the same image localhost/churn-ab:latest.
#
# With a Docker engine (`docker info` succeeds) BentoML's default backend is
# used; otherwise buildah builds against a locally made base image.
# Needs (apt, without Docker): buildah debootstrap
set -euo pipefail
# shellcheck source-path=SCRIPTDIR source=lib/containers-env.sh
source "$(dirname "$0")/lib/containers-env.sh"

bento_dir="$REPO_ROOT"
while (($#)); do
    case "$1" in
    --bento-dir) bento_dir="$2"; shift 2 ;;
    -h | --help) sed -n '2,14p' "$0"; exit 0 ;;
    *) die "unknown argument: $1" ;;
    esac
done
IMAGE_NAME="${IMAGE_NAME:-churn-ab}"

bentoml_cli="${BENTOML:-}"
if [[ -z "$bentoml_cli" ]]; then
    if [[ -x "$REPO_ROOT/.venv/bin/bentoml" ]]; then
        bentoml_cli="$REPO_ROOT/.venv/bin/bentoml"
    else
        bentoml_cli=bentoml
    fi
fi

start=$SECONDS
# `-o tag` prints `__tag__:name:version`; everything else goes to stderr.
bento_tag=$(cd "$bento_dir" && "$bentoml_cli" build -o tag 2>&2 | sed -n 's/^__tag__://p' | tail -n1)
[[ -n "$bento_tag" ]] || die "bentoml build did not report a tag"
version="${bento_tag#*:}"
log "built bento $bento_tag in $((SECONDS - start)) s"

# containerize copies the Bento to a temporary directory and re-reads the
# Dockerfile template (bentofile.yaml: docker.dockerfile_template) from there,
# but refuses a template outside its working directory: run it from a
# temporary directory of our own, which holds its copy.
containerize_dir=$(mktemp -d)
trap 'rm -rf "$containerize_dir"' EXIT
[[ -z "${BENTOML_HOME:-}" ]] || BENTOML_HOME="$(realpath -s "$BENTOML_HOME")"
[[ "$bentoml_cli" != */* ]] || bentoml_cli="$(realpath -s "$bentoml_cli")"
containerize() {
    (cd "$containerize_dir" && TMPDIR="$containerize_dir" "$bentoml_cli" containerize "$bento_tag" "$@")
}
if command -v docker >/dev/null && docker info >/dev/null 2>&1; then
    image="$IMAGE_NAME:$version"
    containerize -t "$image" >&2
    docker tag "$image" "$IMAGE_NAME:latest"
else
    "$DEPLOY_DIR/base-image.sh" >/dev/null
    image="localhost/$IMAGE_NAME:$version"
    # Not --verbose (adds --progress, which buildah 1.28 rejects) nor
    # --opt pull=never (becomes `--pull never`, also rejected).
    containerize --backend buildah -t "$image" --opt isolation=chroot --opt pull-never >&2
    buildah tag "$image" "localhost/$IMAGE_NAME:latest"
fi
log "image $image ready after $((SECONDS - start)) s"
echo "$image"
