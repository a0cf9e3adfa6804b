// The churn-ab monitoring mixin: config feeds dashboards, rules and alerts.
(import 'config.libsonnet') +
(import 'rules.libsonnet') +
(import 'alerts.libsonnet') +
(import 'dashboards.libsonnet')
