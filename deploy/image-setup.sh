#!/usr/bin/env bash
# Runs as root inside the image build (bentofile.yaml: docker.setup_script).
# Creates the service's state directory owned by the unprivileged `bentoml`
# user: Docker and Podman copy a mount point's ownership into a fresh named
# volume, so without this the ledger volume would be root-owned and
# unwritable by the server.
set -euo pipefail
install -d -o bentoml -g bentoml -m 0750 /home/bentoml/var
