// jsonnet -J grafana/mixin -m grafana/dashboards grafana/mixin/render-dashboards.jsonnet
(import 'mixin.libsonnet').grafanaDashboards
