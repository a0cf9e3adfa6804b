// The one place to adapt the churn-ab monitoring to a deployment. Dashboards,
// recording rules and alerts all read these fields, so a change here moves all
// three together. Override from outside with `mixin + { _config+:: { ... } }`.
{
  _config+:: {
    // Selects the churn-ab entry service. Change it when Prometheus scrapes the
    // Bento under another job name (e.g. a Kubernetes ServiceMonitor adds its own).
    churnAbSelector: 'job="churn-ab"',

    // Dashboard panels filter on the template variables instead, so one
    // dashboard serves every job/instance that exposes the contract's metrics.
    dashboardSelector: 'job=~"$job", instance=~"$instance"',

    // Window of every rate() in the recording rules; it is also part of the
    // recorded names (`...:rate5m`). Keep it at least 4x the scrape interval.
    // The live test renders the rules with a 30s window against a 1s scrape.
    rateWindow: '5m',

    // Window over which a canary rollback keeps its alert firing: long enough
    // for someone to see it, short enough to clear by itself afterwards.
    rollbackWindow: '30m',

    // p95 end-to-end /predict latency a variant may have. 250 ms leaves room for
    // adaptive batching (which waits up to tens of ms) on top of a sub-ms model.
    // Lower it if the callers' own timeout budget is tighter; raise it only
    // together with the callers' budget.
    latencyP95SLOSeconds: 0.25,

    // Share of predict/predict_batch requests that may fail server-side
    // (server_error or unavailable). Client errors are the caller's, not ours.
    // 5% tolerates a lost model worker during a restart; tighten when the
    // service has an availability SLO.
    errorRatioThreshold: 0.05,

    // Share of a variant's assigned requests that another variant had to answer.
    // Above this the A/B comparison is no longer between the two models.
    fallbackRatioThreshold: 0.05,

    // Sample-ratio mismatch: alarm below this p-value. 0.001 is the usual
    // choice for a check that runs continuously (fewer false alarms than 0.05);
    // change it only together with the statistics code's own threshold.
    srmPValueThreshold: 0.001,

    // Population Stability Index of a feature or of the score against the
    // model's training reference. The common reading (Siddiqi 2006): above 0.2
    // a shift worth a look, above 0.3 a large one. Unshifted traffic measured
    // at most 0.012; lower the thresholds only for models that must not drift.
    psiWarningThreshold: 0.2,
    psiCriticalThreshold: 0.3,
    // Requests the drift window must hold before a PSI alert may fire: a small
    // window reads high from sampling noise alone (about (bins-1)/n, 0.02 at
    // 500). Raise it for features with many bins.
    driftMinRequests: 500,

    // How long a condition must hold before an alert fires. Longer for
    // conditions that are noisy at low traffic, short for outages.
    alertFor: {
      latency: '10m',
      errorRatio: '5m',
      fallbackRatio: '10m',
      srm: '15m',
      noTraffic: '15m',
      canaryRollback: '1m',
      modelDown: '2m',
      targetDown: '2m',
      // Drift moves with the customer mix over hours; a short burst of one
      // campaign's customers should not page anybody.
      psiWarning: '30m',
      psiCritical: '15m',
      // Labels arrive slowly; the gauge already requires enough of them.
      conceptDrift: '30m',
      // Longer than a killed worker takes to restart and be swept (about 30 s).
      metricsDegraded: '5m',
    },

    // Where the runbook anchors live. Point it at the rendered docs of the
    // repository once it is hosted; relative to the repository root by default.
    runbookURLPattern: 'docs/runbook.md#%s',

    // Grafana: the provisioned datasource (grafana/provisioning/datasources)
    // carries this uid, and every panel names it, so the dashboard needs no
    // clicks after provisioning.
    datasourceUid: 'churn-ab-prometheus',
    dashboardUid: 'churn-ab-overview',
    dashboardTitle: 'churn A/B overview',
    dashboardTags: ['churn-ab', 'ab-testing', 'bentoml'],
    // Template variables are populated from this metric.
    templateMetric: 'predictions_total',
  },
}
