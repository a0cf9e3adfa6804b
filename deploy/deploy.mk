# Deploy targets. The top-level Makefile does `include deploy/deploy.mk`;
# every path here is relative to the repository root.
# Needs (apt): buildah debootstrap podman runc; see docs/deploy.md.

DEPLOY_PYTHON ?= .venv/bin/python
DEPLOY_ARCHIVE ?= deploy/.work/churn-ab.oci.tar
# Host for `make deploy HOST=user@host`.
HOST ?=

.PHONY: base-image image image-archive image-test compose-check k8s-check deploy deploy-dry-run rollback

## base-image: make python:3.11-slim locally with debootstrap (idempotent)
base-image:
	deploy/base-image.sh

## image: bentoml build + containerize; prints the image name
image:
	deploy/build-image.sh

## image-archive: export the last built image to $(DEPLOY_ARCHIVE)
image-archive:
	deploy/export-image.sh localhost/churn-ab:latest $(DEPLOY_ARCHIVE)

## image-test: build, run and probe the image (slow: a few minutes cold)
image-test:
	$(DEPLOY_PYTHON) -m pytest -m image tests/image -p no:cacheprovider

## compose-check: compose file against the compose-spec schema + mounted paths
compose-check:
	$(DEPLOY_PYTHON) -m pytest tests/unit/test_deploy_compose.py -q

## k8s-check: manifests against the Kubernetes schemas, offline
k8s-check:
	$(DEPLOY_PYTHON) -m pytest tests/unit/test_deploy_k8s.py -q

## deploy: ship $(DEPLOY_ARCHIVE) to HOST and start the stack there
deploy:
	@test -n "$(HOST)" || { echo "usage: make deploy HOST=user@host" >&2; exit 2; }
	deploy/deploy.sh $(HOST) --archive $(DEPLOY_ARCHIVE)

deploy-dry-run:
	@test -n "$(HOST)" || { echo "usage: make deploy-dry-run HOST=user@host" >&2; exit 2; }
	deploy/deploy.sh $(HOST) --archive $(DEPLOY_ARCHIVE) --dry-run

## rollback: point HOST back at the image that ran before the last deploy
rollback:
	@test -n "$(HOST)" || { echo "usage: make rollback HOST=user@host" >&2; exit 2; }
	deploy/deploy.sh $(HOST) --rollback
