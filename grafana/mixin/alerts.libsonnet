// Alerts. Each has `for`, `severity`, a summary, a templated description and a
// runbook anchor in docs/runbook.md (anchor = lower-cased alert name).
{
  local cfg = $._config,
  local sel = cfg.churnAbSelector,
  local n = $._recordNames,

  local alert(name, expr, forDuration, severity, summary, description) = {
    alert: name,
    expr: expr,
    'for': forDuration,
    labels: { severity: severity },
    annotations: {
      summary: summary,
      description: description,
      runbook_url: cfg.runbookURLPattern % std.asciiLower(name),
    },
  },

  // PSI above a threshold in a window with enough requests behind it.
  local drifted(record, threshold) = |||
    %(r)s{%(sel)s} > %(t)g
    and on (job, variant)
      %(n)s{%(sel)s} >= %(min)d
  ||| % { r: record, sel: sel, t: threshold, n: n.driftRequests, min: cfg.driftMinRequests },

  local featureDrift(name, threshold, forDuration, severity, size) = alert(
    name,
    drifted(n.featurePsi, threshold),
    forDuration,
    severity,
    'The live distribution of an input feature moved away from training (%s).' % size,
    'Feature {{ $labels.feature }} of variant {{ $labels.variant }} has a PSI of {{ $value | printf "%%.2f" }} against its training reference (> %g) in the current drift window.' % threshold,
  ),

  local scoreDrift(name, threshold, forDuration, severity, size) = alert(
    name,
    drifted(n.scorePsi, threshold),
    forDuration,
    severity,
    "A variant's score distribution moved away from its training scores (%s)." % size,
    'The churn scores of variant {{ $labels.variant }} have a PSI of {{ $value | printf "%%.2f" }} against its out-of-fold training scores (> %g) in the current drift window.' % threshold,
  ),

  prometheusAlerts+:: {
    groups+: [
      {
        name: 'churn-ab.alerts',
        rules: [
          alert(
            'ChurnAbVariantLatencyHigh',
            '%s{%s} > %g' % [n.latencyQuantile(95), sel, cfg.latencyP95SLOSeconds],
            cfg.alertFor.latency,
            'warning',
            'A churn model variant answers /predict slower than its p95 SLO.',
            'p95 /predict latency of variant {{ $labels.model_version }} (job {{ $labels.job }}) is {{ $value | humanizeDuration }}, above the %gs SLO.' % cfg.latencyP95SLOSeconds,
          ),
          alert(
            'ChurnAbErrorRatioHigh',
            '%s{%s, endpoint=~"predict|predict_batch"} > %g' % [n.failureRatio, sel, cfg.errorRatioThreshold],
            cfg.alertFor.errorRatio,
            'critical',
            'Too many churn-ab prediction requests fail server-side.',
            '{{ $value | humanizePercentage }} of {{ $labels.endpoint }} requests to {{ $labels.job }} end in server_error or unavailable (threshold ratio %g).' % cfg.errorRatioThreshold,
          ),
          alert(
            'ChurnAbVariantFallbackRatioHigh',
            '%s{%s} > %g' % [n.fallbackRatio, sel, cfg.fallbackRatioThreshold],
            cfg.alertFor.fallbackRatio,
            'warning',
            'A variant fails often enough that another variant answers for it.',
            '{{ $value | humanizePercentage }} of requests assigned to variant {{ $labels.variant }} in experiment {{ $labels.experiment }} were answered by a fallback variant (threshold ratio %g).' % cfg.fallbackRatioThreshold,
          ),
          alert(
            'ChurnAbSampleRatioMismatch',
            'min by (job, experiment) (churn_ab_srm_p_value{%s}) < %g' % [sel, cfg.srmPValueThreshold],
            cfg.alertFor.srm,
            'warning',
            'Observed traffic split does not match the configured weights.',
            'Experiment {{ $labels.experiment }} has a sample-ratio-mismatch p-value of {{ $value | printf "%%.2g" }} (< %g) in its current epoch: its results cannot be trusted until the cause is found.' % cfg.srmPValueThreshold,
          ),
          alert(
            'ChurnAbVariantNoTraffic',
            |||
              max by (job, experiment, variant) (churn_ab_variant_weight_ratio{%(sel)s}) > 0
              unless on (job, experiment, variant)
                %(a)s{%(sel)s} > 0
              and on (job, experiment)
                sum by (job, experiment) (%(a)s{%(sel)s}) > 0
            ||| % { sel: sel, a: n.assignmentsRate },
            cfg.alertFor.noTraffic,
            'warning',
            'A variant with a positive traffic weight receives no traffic.',
            'Variant {{ $labels.variant }} of experiment {{ $labels.experiment }} is weighted {{ $value | humanizePercentage }} but got no assignments in the last %s while the experiment had traffic.' % cfg.rateWindow,
          ),
          alert(
            'ChurnAbCanaryRolledBack',
            'max by (job, experiment) (increase(churn_ab_canary_rollbacks_total{%s}[%s])) > 0' % [sel, cfg.rollbackWindow],
            cfg.alertFor.canaryRollback,
            'warning',
            'The canary was rolled back automatically.',
            'Experiment {{ $labels.experiment }} rolled its canary back {{ $value | printf "%%.0f" }} time(s) in the last %s; the candidate variant no longer gets canary traffic.' % cfg.rollbackWindow,
          ),
          alert(
            'ChurnAbModelServiceDown',
            'churn_ab_model_up{%s} == 0' % sel,
            cfg.alertFor.modelDown,
            'critical',
            'The churn-ab entry service cannot reach a model service.',
            'Instance {{ $labels.instance }} cannot reach the model service of variant {{ $labels.variant }}; its traffic goes to a fallback variant or fails.',
          ),
          alert(
            'ChurnAbMetricsDegraded',
            |||
              min by (job, instance) (churn_ab_metrics_self_check{%(sel)s}) == 0
              or
                sum by (job, instance) (churn_ab_metrics_writers{%(sel)s})
              < max by (job, instance) (churn_ab_metrics_expected_writers{%(sel)s})
            ||| % { sel: sel },
            cfg.alertFor.metricsDegraded,
            'warning',
            "Part of a churn-ab instance's metrics no longer reach /metrics.",
            'Instance {{ $labels.instance }} of job {{ $labels.job }}: a worker writes metrics into files /metrics no longer reads, or fewer workers report than run (value {{ $value }}: 0 = self-check failed, else the reporting workers). Its counters under-count from now on; see /health.',
          ),
          alert(
            'ChurnAbTargetDown',
            'up{%s} == 0' % sel,
            cfg.alertFor.targetDown,
            'critical',
            'Prometheus cannot scrape the churn-ab service.',
            'Target {{ $labels.instance }} of job {{ $labels.job }} has been down for more than %s: no predictions are being served from it, or its /metrics is broken.' % cfg.alertFor.targetDown,
          ),
        ],
      },
      {
        name: 'churn-ab.drift.alerts',
        rules: [
          featureDrift('ChurnAbFeatureDriftWarning', cfg.psiWarningThreshold, cfg.alertFor.psiWarning, 'warning', 'moderate'),
          featureDrift('ChurnAbFeatureDriftCritical', cfg.psiCriticalThreshold, cfg.alertFor.psiCritical, 'critical', 'large'),
          scoreDrift('ChurnAbScoreDriftWarning', cfg.psiWarningThreshold, cfg.alertFor.psiWarning, 'warning', 'moderate'),
          scoreDrift('ChurnAbScoreDriftCritical', cfg.psiCriticalThreshold, cfg.alertFor.psiCritical, 'critical', 'large'),
          alert(
            'ChurnAbConceptDrift',
            'max by (job, variant) (churn_ab_concept_drift{%s}) == 1' % sel,
            cfg.alertFor.conceptDrift,
            'warning',
            "A variant's labelled quality is worse than on its held-out test split.",
            "The last labelled answers of variant {{ $labels.variant }} have a Brier score or ROC AUC worse than the model's held-out values by more than the configured margin (CHURN_AB_CONCEPT_*_MARGIN).",
          ),
        ],
      },
    ],
  },
}
