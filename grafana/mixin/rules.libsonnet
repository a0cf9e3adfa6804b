// Recording rules, named level:metric:operations (Prometheus naming practice):
// the level lists the labels kept besides `job`, the metric drops `_total`
// once rated, and the operations end with the window (`rate5m`, `p95_5m`).
// The window comes from _config.rateWindow, so the names follow it.
{
  local cfg = $._config,
  local w = cfg.rateWindow,
  local sel = cfg.churnAbSelector,

  // Names are exported so alerts (and tests) refer to them, never retype them.
  _recordNames+:: {
    predictionsRate: 'model_version:predictions:rate' + w,
    jobPredictionsRate: 'job:predictions:rate' + w,
    latencyQuantile(q): 'model_version:prediction_latency_seconds:p%d_%s' % [q, w],
    churnRatio: 'model_version:churn_predictions:ratio_rate' + w,
    requestsRate: 'endpoint_outcome:churn_ab_requests:rate' + w,
    failureRatio: 'endpoint:churn_ab_request_failures_per_requests:ratio_rate' + w,
    assignmentsRate: 'experiment_variant:churn_ab_assignments:rate' + w,
    assignmentsShare: 'experiment_variant:churn_ab_assignments:ratio_rate' + w,
    fallbackRatio: 'experiment_variant:churn_ab_fallbacks_per_assignments:ratio_rate' + w,
    featurePsi: 'variant_feature:churn_ab_feature_psi:max',
    scorePsi: 'variant:churn_ab_score_psi:max',
    driftRequests: 'variant:churn_ab_drift_window_requests:max',
  },
  local n = self._recordNames,

  local quantileRule(q) = {
    record: n.latencyQuantile(q),
    expr: |||
      histogram_quantile(%(quantile)g,
        sum by (job, model_version, le) (rate(prediction_latency_seconds_bucket{%(sel)s}[%(w)s]))
      )
    ||| % { quantile: q / 100, sel: sel, w: w },
  },

  prometheusRules+:: {
    groups+: [
      {
        name: 'churn-ab.rules',
        rules: [
          {
            record: n.predictionsRate,
            expr: 'sum by (job, model_version) (rate(predictions_total{%s}[%s]))' % [sel, w],
          },
          {
            record: n.jobPredictionsRate,
            expr: 'sum by (job) (%s)' % n.predictionsRate,
          },
        ] + [quantileRule(q) for q in [50, 95, 99]] + [
          {
            // Share of a variant's answers that predict churn: a shift here is
            // the first sign that a model (or its input) changed.
            record: n.churnRatio,
            expr: |||
              sum by (job, model_version) (rate(churn_predictions_total{%(sel)s, prediction="1"}[%(w)s]))
              /
              sum by (job, model_version) (rate(churn_predictions_total{%(sel)s}[%(w)s]))
            ||| % { sel: sel, w: w },
          },
          {
            record: n.requestsRate,
            expr: 'sum by (job, endpoint, outcome) (rate(churn_ab_requests_total{%s}[%s]))' % [sel, w],
          },
          {
            // Client errors are excluded: a caller sending bad JSON is not an outage.
            // `or ... * 0` makes an endpoint that never failed read 0, not "no data".
            record: n.failureRatio,
            expr: |||
              (
                sum by (job, endpoint) (%(r)s{outcome=~"server_error|unavailable"})
                or
                sum by (job, endpoint) (%(r)s) * 0
              )
              /
              sum by (job, endpoint) (%(r)s)
            ||| % { r: n.requestsRate },
          },
          {
            record: n.assignmentsRate,
            expr: 'sum by (job, experiment, variant) (rate(churn_ab_assignments_total{%s}[%s]))' % [sel, w],
          },
          {
            // Observed traffic share, to compare with churn_ab_variant_weight_ratio.
            record: n.assignmentsShare,
            expr: |||
              %(r)s
              / on (job, experiment) group_left
              sum by (job, experiment) (%(r)s)
            ||| % { r: n.assignmentsRate },
          },
          {
            // Per-variant error ratio: requests assigned to a variant that
            // another variant had to answer because this one failed.
            record: n.fallbackRatio,
            expr: |||
              (
                sum by (job, experiment, variant) (
                  label_replace(rate(churn_ab_fallbacks_total{%(sel)s}[%(w)s]), "variant", "$1", "from_variant", "(.*)")
                )
                or
                %(a)s * 0
              )
              /
              %(a)s
            ||| % { sel: sel, w: w, a: n.assignmentsRate },
          },
        ],
      },
      {
        // Every instance reads the same shared counts from the ledger, so
        // they agree up to a refresh; max keeps one series per variant.
        name: 'churn-ab.drift.rules',
        rules: [
          {
            record: n.featurePsi,
            expr: 'max by (job, variant, feature) (churn_ab_feature_psi{%s})' % sel,
          },
          {
            record: n.scorePsi,
            expr: 'max by (job, variant) (churn_ab_score_psi{%s})' % sel,
          },
          {
            record: n.driftRequests,
            expr: 'max by (job, variant) (churn_ab_drift_window_requests{%s})' % sel,
          },
        ],
      },
    ],
  },
}
