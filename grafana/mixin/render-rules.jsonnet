// jsonnet -J grafana/mixin -S -m prometheus/rules grafana/mixin/render-rules.jsonnet
// The optional top-level argument `config` overrides _config (the live test
// uses it to shorten the rate window); the committed files use the defaults.
function(config={})
  local mixin = (import 'mixin.libsonnet') + { _config+:: config };
  local header = '# Generated from grafana/mixin by `make -f grafana/mixin.mk rules`; do not edit.\n';
  {
    'churn-ab.rules.yml': header + std.manifestYamlDoc(mixin.prometheusRules),
    'churn-ab.alerts.yml': header + std.manifestYamlDoc(mixin.prometheusAlerts),
  }
