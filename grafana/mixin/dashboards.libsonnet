// The "churn A/B overview" dashboard. Panels query raw metrics with
// $__rate_interval (not the recording rules), so the dashboard works on any
// Prometheus that scrapes the service, with or without our rules loaded, and
// the live test can evaluate the same expressions with a concrete window.
local layout = import 'lib/layout.libsonnet';

{
  local cfg = $._config,
  local ds = { type: 'prometheus', uid: cfg.datasourceUid },
  local p = (import 'lib/panels.libsonnet')(ds),
  local s = cfg.dashboardSelector,
  local r = '$__rate_interval',
  local fmt(template) = template % { s: s, r: r },

  local latencyQuantile(q) = p.target(
    fmt('histogram_quantile(%(q)g, sum by (le, model_version) (rate(prediction_latency_seconds_bucket{%(s)s}[%(r)s])))' % { q: q, s: '%(s)s', r: '%(r)s' }),
    'p%g {{model_version}}' % (q * 100),
  ),

  local variable(name, label, query, includeAll) = {
    name: name,
    label: label,
    type: 'query',
    datasource: ds,
    query: { query: query, refId: name },
    definition: query,
    refresh: 2,
    sort: 1,
    includeAll: includeAll,
    multi: includeAll,
    current: {},
  } + (if includeAll then { allValue: '.+' } else {}),

  local rows = [
    {
      title: 'Traffic',
      panels: [
        p.timeseries(
          'Request rate per variant',
          'reqps',
          [p.target(fmt('sum by (model_version) (rate(predictions_total{%(s)s}[%(r)s]))'), '{{model_version}}')],
          'Predictions answered per second, by the variant that answered (fallbacks count for the variant that answered).',
        ),
        p.timeseries(
          'Traffic share vs configured weight',
          'percentunit',
          [
            p.target(fmt(|||
              sum by (experiment, variant) (rate(churn_ab_assignments_total{%(s)s}[%(r)s]))
              / on (experiment) group_left
              sum by (experiment) (rate(churn_ab_assignments_total{%(s)s}[%(r)s]))
            |||), 'observed {{variant}}'),
            p.target(fmt('max by (experiment, variant) (churn_ab_variant_weight_ratio{%(s)s})'), 'weight {{variant}}'),
          ],
          'Observed share of assignments per variant against the configured weight. A persistent gap is what the SRM check tests.',
          min=0,
          max=1,
        ),
        p.timeseries(
          'Churn prediction rate per variant',
          'percentunit',
          [p.target(fmt(|||
            sum by (model_version) (rate(churn_predictions_total{%(s)s, prediction="1"}[%(r)s]))
            /
            sum by (model_version) (rate(churn_predictions_total{%(s)s}[%(r)s]))
          |||), '{{model_version}}')],
          'Share of answers that predict churn, per variant. A sudden shift points at a model or input change.',
          min=0,
          max=1,
        ),
        p.timeseries(
          'Shadow scoring rate',
          'reqps',
          [p.target(fmt('sum by (experiment, variant) (rate(churn_ab_shadow_scores_total{%(s)s}[%(r)s]))'), '{{variant}}')],
          'Requests scored in the background by a variant that did not answer them (shadow mode).',
        ),
      ],
    },
    {
      title: 'Latency and batching',
      panels: [
        p.timeseries(
          'Latency p50 / p95 / p99 per variant',
          's',
          [latencyQuantile(0.5), latencyQuantile(0.95), latencyQuantile(0.99)],
          'End-to-end /predict latency by answering variant. The p95 SLO is %gs.' % cfg.latencyP95SLOSeconds,
        ) + p.withThresholds([[null, 'green'], [cfg.latencyP95SLOSeconds, 'red']]),
        p.timeseries(
          'Model inference time per batch (p95)',
          's',
          [p.target(fmt('histogram_quantile(0.95, sum by (le, variant) (rate(churn_ab_model_inference_seconds_bucket{%(s)s}[%(r)s])))'), 'p95 {{variant}}')],
          'Time the model service spends on one adaptive batch.',
        ),
        p.timeseries(
          'Adaptive batch size per variant',
          'short',
          [
            p.target(fmt(|||
              sum by (variant) (rate(churn_ab_batch_size_sum{%(s)s}[%(r)s]))
              /
              sum by (variant) (rate(churn_ab_batch_size_count{%(s)s}[%(r)s]))
            |||), 'mean {{variant}}'),
            p.target(fmt('histogram_quantile(0.95, sum by (le, variant) (rate(churn_ab_batch_size_bucket{%(s)s}[%(r)s])))'), 'p95 {{variant}}'),
          ],
          'Rows per batch the model service ran. Near 1 under load means batching is not kicking in.',
        ),
      ],
    },
    {
      title: 'Errors',
      panels: [
        p.timeseries(
          'Request outcomes by endpoint',
          'reqps',
          [p.target(fmt('sum by (endpoint, outcome) (rate(churn_ab_requests_total{%(s)s}[%(r)s]))'), '{{endpoint}} {{outcome}}')],
          'Every request to the service, by endpoint and outcome.',
        ),
        p.timeseries(
          'Server error ratio by endpoint',
          'percentunit',
          [p.target(fmt(|||
            (
              sum by (endpoint) (rate(churn_ab_requests_total{%(s)s, outcome=~"server_error|unavailable"}[%(r)s]))
              or
              sum by (endpoint) (rate(churn_ab_requests_total{%(s)s}[%(r)s])) * 0
            )
            /
            sum by (endpoint) (rate(churn_ab_requests_total{%(s)s}[%(r)s]))
          |||), '{{endpoint}}')],
          'Share of requests ending in server_error or unavailable (client errors excluded). Alert threshold: %g.' % cfg.errorRatioThreshold,
          min=0,
        ) + p.withThresholds([[null, 'green'], [cfg.errorRatioThreshold, 'red']]),
        p.timeseries(
          'Errors by kind',
          'reqps',
          [p.target(fmt('sum by (kind) (rate(churn_ab_errors_total{%(s)s}[%(r)s]))'), '{{kind}}')],
          'validation, model_timeout, model_error, ledger, internal.',
        ),
        p.timeseries(
          'Fallback rate',
          'reqps',
          [p.target(fmt('sum by (experiment, from_variant, to_variant) (rate(churn_ab_fallbacks_total{%(s)s}[%(r)s]))'), '{{from_variant}} → {{to_variant}}')],
          'Requests assigned to one variant but answered by another because the first failed.',
        ),
      ],
    },
    {
      title: 'Experiment',
      height: 6,
      panels: [
        p.timeseries(
          'Sample-ratio mismatch p-value',
          'none',
          [p.target(fmt('min by (experiment) (churn_ab_srm_p_value{%(s)s})'), '{{experiment}}')],
          'Chi-square p-value of the observed split against the weights, current epoch. Below %g the split is broken.' % cfg.srmPValueThreshold,
          min=0,
          max=1,
        ) + p.withThresholds([[null, 'red'], [cfg.srmPValueThreshold, 'green']]),
        p.stat(
          'Canary stage',
          'none',
          [p.target(fmt('max by (experiment) (churn_ab_canary_stage{%(s)s})'), '{{experiment}}')],
          '0-based index of the current canary stage; -1 when the experiment is not in canary mode.',
        ),
        p.stat(
          'Canary rollbacks',
          'none',
          [p.target(fmt('max by (experiment) (churn_ab_canary_rollbacks_total{%(s)s})'), '{{experiment}}')],
          'Automatic canary rollbacks since the experiment started.',
        ) + p.withThresholds([[null, 'green'], [1, 'orange']]),
        p.stat(
          'Experiment epoch',
          'none',
          [p.target(fmt('max by (experiment) (churn_ab_experiment_epoch{%(s)s})'), '{{experiment}}')],
          'Bumped whenever weights change; SRM and quality are computed per epoch.',
        ),
        p.table(
          'Experiment mode',
          'none',
          [p.target(fmt('max by (experiment, mode) (churn_ab_experiment_info{%(s)s})'), '', instant=true, format='table')],
          'Configured mode of each experiment.',
        ),
      ],
    },
    {
      title: 'Quality (labelled feedback)',
      panels: [
        p.timeseries(
          'Brier score per variant',
          'none',
          [p.target(fmt('max by (experiment, variant) (churn_ab_variant_brier_score{%(s)s})'), '{{variant}}')],
          'Mean squared error of predicted churn probability on labelled exposures; lower is better. Empty until feedback arrives.',
          min=0,
          max=1,
        ),
        p.timeseries(
          'ROC AUC per variant',
          'none',
          [p.target(fmt('max by (experiment, variant) (churn_ab_variant_roc_auc{%(s)s})'), '{{variant}}')],
          'Ranking quality on labelled exposures; higher is better, 0.5 is chance. Empty until both classes are labelled.',
          min=0,
          max=1,
        ),
        p.timeseries(
          'Labelled exposures per variant',
          'short',
          [p.target(fmt('max by (experiment, variant) (churn_ab_labelled_exposures{%(s)s})'), '{{variant}}')],
          'Exposures with a churn label: how much evidence the quality panels rest on.',
        ),
        p.timeseries(
          'Feedback outcomes',
          'reqps',
          [p.target(fmt('sum by (outcome) (rate(churn_ab_feedback_total{%(s)s}[%(r)s]))'), '{{outcome}}')],
          'Labels posted to /feedback, by outcome.',
        ),
      ],
    },
    {
      title: 'Drift',
      panels: [
        p.timeseries(
          'Feature PSI per variant',
          'none',
          [p.target(fmt('max by (variant, feature) (churn_ab_feature_psi{%(s)s})'), '{{variant}} {{feature}}')],
          'Population Stability Index of each input feature against the training reference, current epoch and drift window. Warning above %g, critical above %g.' % [cfg.psiWarningThreshold, cfg.psiCriticalThreshold],
          min=0,
        ) + p.withThresholds([[null, 'green'], [cfg.psiWarningThreshold, 'orange'], [cfg.psiCriticalThreshold, 'red']]),
        p.timeseries(
          'Score PSI per variant',
          'none',
          [p.target(fmt('max by (variant) (churn_ab_score_psi{%(s)s})'), '{{variant}}')],
          "PSI of each variant's live churn scores against its out-of-fold training scores.",
          min=0,
        ) + p.withThresholds([[null, 'green'], [cfg.psiWarningThreshold, 'orange'], [cfg.psiCriticalThreshold, 'red']]),
        p.timeseries(
          'Requests and labels in the drift windows',
          'short',
          [
            p.target(fmt('max by (variant) (churn_ab_drift_window_requests{%(s)s})'), 'requests {{variant}}'),
            p.target(fmt('max by (variant) (churn_ab_concept_window_labels{%(s)s})'), 'labels {{variant}}'),
          ],
          'Answered requests behind the PSI panels (PSI alerts need at least %d) and labels behind the concept-drift panels.' % cfg.driftMinRequests,
        ),
        p.timeseries(
          'Labelled Brier: window vs held-out',
          'none',
          [
            p.target(fmt('max by (variant) (churn_ab_concept_window_brier_score{%(s)s})'), 'window {{variant}}'),
            p.target(fmt('max by (variant) (churn_ab_model_heldout_brier_score{%(s)s})'), 'held-out {{variant}}'),
          ],
          "Brier score of each variant's last labelled answers against the model's held-out value; lower is better.",
          min=0,
        ),
        p.timeseries(
          'Labelled ROC AUC: window vs held-out',
          'none',
          [
            p.target(fmt('max by (variant) (churn_ab_concept_window_roc_auc{%(s)s})'), 'window {{variant}}'),
            p.target(fmt('max by (variant) (churn_ab_model_heldout_roc_auc{%(s)s})'), 'held-out {{variant}}'),
          ],
          "ROC AUC of each variant's last labelled answers against the model's held-out value; higher is better.",
          min=0,
          max=1,
        ),
        p.stat(
          'Concept drift',
          'bool_yes_no',
          [p.target(fmt('max by (variant) (churn_ab_concept_drift{%(s)s})'), '{{variant}}')],
          'Yes when the labelled window is worse than held-out by more than the margin, with enough labels.',
        ) + p.withThresholds([[null, 'green'], [1, 'red']]),
      ],
    },
    {
      title: 'Models',
      height: 6,
      panels: [
        p.stat(
          'Model service reachable',
          'bool_yes_no',
          [p.target(fmt('min by (variant) (churn_ab_model_up{%(s)s})'), '{{variant}}')],
          "1 when every entry-service instance can reach the variant's model service.",
        ) + p.withThresholds([[null, 'red'], [1, 'green']]),
        p.table(
          'Deployed models',
          'none',
          [p.target(fmt('max by (variant, tag, algorithm) (churn_ab_model_info{%(s)s})'), '', instant=true, format='table')],
          'Model tag and algorithm each variant serves.',
        ),
      ],
    },
    {
      title: 'Metrics health',
      height: 5,
      panels: [
        p.stat(
          'Metrics self-check',
          'bool_yes_no',
          [p.target(fmt('min by (instance) (churn_ab_metrics_self_check{%(s)s})'), '{{instance}}')],
          "1 while the scraped worker writes to the files /metrics reads; 0 means this instance's counters under-count (runbook: ChurnAbMetricsDegraded).",
        ) + p.withThresholds([[null, 'red'], [1, 'green']]),
        p.stat(
          'Workers reporting metrics',
          'none',
          [
            p.target(fmt('sum by (instance) (churn_ab_metrics_writers{%(s)s})'), '{{instance}} reporting'),
            p.target(fmt('max by (instance) (churn_ab_metrics_expected_writers{%(s)s})'), '{{instance}} expected'),
          ],
          'Live worker processes whose metric files /metrics reads, next to how many the instance runs.',
        ),
        p.timeseries(
          'Rate-limited requests per API key',
          'reqps',
          [p.target(fmt('sum by (key) (rate(churn_ab_rate_limited_total{%(s)s}[%(r)s]))'), '{{key}}')],
          'Requests answered 429 because their API key was over its rate (a batch counts as its rows against the limit, as one request here).',
        ),
      ],
    },
  ],

  grafanaDashboards+:: {
    'churn-ab-overview.json': {
      uid: cfg.dashboardUid,
      title: cfg.dashboardTitle,
      description: 'Traffic, latency, errors, experiment health and labelled quality of the churn-ab A/B test.',
      tags: cfg.dashboardTags,
      editable: true,
      graphTooltip: 1,
      schemaVersion: 39,
      version: 1,
      refresh: '30s',
      time: { from: 'now-1h', to: 'now' },
      timezone: 'browser',
      links: [],
      annotations: { list: [] },
      templating: {
        list: [
          variable('job', 'job', 'label_values(%s, job)' % cfg.templateMetric, false),
          variable('instance', 'instance', 'label_values(%s{job=~"$job"}, instance)' % cfg.templateMetric, true),
        ],
      },
      panels: layout.grid(rows),
    },
  },
}
