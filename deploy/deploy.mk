# Deploy targets. The top-level Makefile does `include deploy/deploy.mk`;
# every path here is relative to the repository root.
# Needs (apt): buildah debootstrap podman runc; see docs/deploy.md.

DEPLOY_PYTHON ?= .venv/bin/python
DEPLOY_ARCHIVE ?= deploy/.work/churn-ab.oci.tar
# The image `make image-archive` exports (the last `make image` by default).
DEPLOY_IMAGE ?= localhost/churn-ab:latest
# ssh destination for `make deploy DEPLOY_HOST=user@host` (not HOST: some
# shells export that as the machine's own name).
DEPLOY_HOST ?=

.PHONY: base-image prometheus-image image image-archive image-test compose-check k8s-check deploy deploy-dry-run rollback

## base-image: make python:3.11-slim locally with debootstrap (idempotent)
base-image:
	deploy/base-image.sh

## prometheus-image: Prometheus from Debian's package, for the compose stack (idempotent)
prometheus-image:
	deploy/prometheus-image.sh

## image: bentoml build + containerize; prints the image name
image:
	deploy/build-image.sh

## image-archive: export the last built image to $(DEPLOY_ARCHIVE)
image-archive:
	deploy/export-image.sh $(DEPLOY_IMAGE) $(DEPLOY_ARCHIVE)

## image-test: build, run and probe the image (slow: a few minutes cold)
image-test:
	$(DEPLOY_PYTHON) -m pytest -m image tests/image -p no:cacheprovider

## compose-check: compose file against the compose-spec schema + mounted paths
compose-check:
	$(DEPLOY_PYTHON) -m pytest tests/unit/test_deploy_compose.py -q

## k8s-check: manifests against the Kubernetes schemas, offline
k8s-check:
	$(DEPLOY_PYTHON) -m pytest tests/unit/test_deploy_k8s.py -q

## deploy: ship $(DEPLOY_ARCHIVE) to DEPLOY_HOST and start the stack there
deploy:
	@test -n "$(DEPLOY_HOST)" || { echo "usage: make deploy DEPLOY_HOST=user@host" >&2; exit 2; }
	deploy/deploy.sh $(DEPLOY_HOST) --archive $(DEPLOY_ARCHIVE)

deploy-dry-run:
	@test -n "$(DEPLOY_HOST)" || { echo "usage: make deploy-dry-run DEPLOY_HOST=user@host" >&2; exit 2; }
	deploy/deploy.sh $(DEPLOY_HOST) --archive $(DEPLOY_ARCHIVE) --dry-run

## rollback: point DEPLOY_HOST back at the image that ran before the last deploy
rollback:
	@test -n "$(DEPLOY_HOST)" || { echo "usage: make rollback DEPLOY_HOST=user@host" >&2; exit 2; }
	deploy/deploy.sh $(DEPLOY_HOST) --rollback
