// Minimal Grafana panel builders: just the fields this mixin uses, so the
// rendered JSON stays readable and every panel gets a unit and a datasource.
// Use: local panels = (import 'lib/panels.libsonnet')(datasource);
function(datasource) {
  target(expr, legend='', refId='A', instant=false, format='time_series'):: {
    datasource: datasource,
    expr: expr,
    legendFormat: legend,
    refId: refId,
    instant: instant,
    range: !instant,
    format: format,
  },

  // Targets get refIds A, B, C... in order, so callers list only expressions.
  targets(list):: [
    list[i] { refId: std.char(std.codepoint('A') + i) }
    for i in std.range(0, std.length(list) - 1)
  ],

  local base(type, title, unit, targets, description) = {
    type: type,
    title: title,
    description: description,
    datasource: datasource,
    targets: $.targets(targets),
    fieldConfig: {
      defaults: { unit: unit },
      overrides: [],
    },
    options: {},
  },

  timeseries(title, unit, targets, description='', min=null, max=null, logBase=null)::
    base('timeseries', title, unit, targets, description) {
      fieldConfig+: {
        defaults+: {
                     custom: {
                       drawStyle: 'line',
                       lineWidth: 1,
                       fillOpacity: 10,
                       showPoints: 'never',
                       spanNulls: false,
                     } + (if logBase == null then {} else {
                            scaleDistribution: { type: 'log', log: logBase },
                          }),
                   } + (if min == null then {} else { min: min })
                   + (if max == null then {} else { max: max }),
      },
      options: {
        legend: { displayMode: 'table', placement: 'bottom', calcs: ['lastNotNull', 'max'] },
        tooltip: { mode: 'multi', sort: 'desc' },
      },
    },

  // Thresholds as [[value, color], ...]; the first value is ignored (base step).
  withThresholds(steps):: {
    fieldConfig+: {
      defaults+: {
        thresholds: {
          mode: 'absolute',
          steps: [
            { value: if i == 0 then null else steps[i][0], color: steps[i][1] }
            for i in std.range(0, std.length(steps) - 1)
          ],
        },
      },
    },
  },

  stat(title, unit, targets, description='')::
    base('stat', title, unit, targets, description) {
      options: {
        reduceOptions: { calcs: ['lastNotNull'], fields: '', values: false },
        colorMode: 'value',
        graphMode: 'none',
        textMode: 'auto',
      },
    },

  table(title, unit, targets, description='')::
    base('table', title, unit, targets, description) {
      options: { showHeader: true },
      transformations: [
        { id: 'merge', options: {} },
        { id: 'organize', options: { excludeByName: { Time: true } } },
      ],
    },
}
