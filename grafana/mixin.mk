# Monitoring mixin: render dashboards and Prometheus rules from grafana/mixin,
# and check them. Works both `include`d from the top-level Makefile and as
# `make -f grafana/mixin.mk <target>` from anywhere: paths are taken from this
# file's own location. Needs the Debian packages `jsonnet` and `prometheus`
# (promtool).

MIXIN_ROOT := $(abspath $(dir $(lastword $(MAKEFILE_LIST)))..)
MIXIN_DIR := $(MIXIN_ROOT)/grafana/mixin
MIXIN_DASHBOARDS_DIR := $(MIXIN_ROOT)/grafana/dashboards
MIXIN_RULES_DIR := $(MIXIN_ROOT)/prometheus/rules
MIXIN_SOURCES := $(wildcard $(MIXIN_DIR)/*.libsonnet $(MIXIN_DIR)/*.jsonnet $(MIXIN_DIR)/lib/*.libsonnet)
JSONNET ?= jsonnet
JSONNETFMT ?= jsonnetfmt
PROMTOOL ?= promtool

.PHONY: dashboards rules monitoring check-monitoring fmt-monitoring

## Render grafana/dashboards/*.json from the mixin.
dashboards:
	$(JSONNET) -J $(MIXIN_DIR) -m $(MIXIN_DASHBOARDS_DIR) $(MIXIN_DIR)/render-dashboards.jsonnet

## Render prometheus/rules/churn-ab.{rules,alerts}.yml from the mixin.
rules:
	$(JSONNET) -J $(MIXIN_DIR) -S -m $(MIXIN_RULES_DIR) $(MIXIN_DIR)/render-rules.jsonnet

monitoring: dashboards rules

## Format the Jsonnet sources in place.
fmt-monitoring:
	$(JSONNETFMT) -i $(MIXIN_SOURCES)

## Fail if the rendered files are stale, the Jsonnet is unformatted, or
## promtool rejects the config, the rules or their unit tests.
check-monitoring:
	@tmp=$$(mktemp -d) && trap 'rm -rf "$$tmp"' EXIT && \
	$(JSONNET) -J $(MIXIN_DIR) -m "$$tmp" $(MIXIN_DIR)/render-dashboards.jsonnet >/dev/null && \
	$(JSONNET) -J $(MIXIN_DIR) -S -m "$$tmp" $(MIXIN_DIR)/render-rules.jsonnet >/dev/null && \
	diff -u $(MIXIN_DASHBOARDS_DIR)/churn-ab-overview.json "$$tmp/churn-ab-overview.json" && \
	diff -u $(MIXIN_RULES_DIR)/churn-ab.rules.yml "$$tmp/churn-ab.rules.yml" && \
	diff -u $(MIXIN_RULES_DIR)/churn-ab.alerts.yml "$$tmp/churn-ab.alerts.yml" || \
	{ echo "rendered monitoring files are stale: run 'make -f grafana/mixin.mk monitoring'" >&2; exit 1; }
	$(JSONNETFMT) --test $(MIXIN_SOURCES)
	$(PROMTOOL) check config $(MIXIN_ROOT)/prometheus/prometheus.yml
	$(PROMTOOL) check rules $(MIXIN_RULES_DIR)/churn-ab.rules.yml $(MIXIN_RULES_DIR)/churn-ab.alerts.yml
	$(PROMTOOL) test rules $(MIXIN_ROOT)/prometheus/tests/*.yml
