"""Full evaluations over an intervention grid: grid spec, batched scoring, per-sample results,
aggregates with bootstrap confidence intervals, tables and heat maps."""
