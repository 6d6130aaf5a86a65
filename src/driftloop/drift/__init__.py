"""Drift: is the new data different from what the model learned from?

`stats` has the two-sample tests and distances vectorised across columns (KS, chi-square, PSI,
Wasserstein, Jensen-Shannon; equal to scipy's), `report` applies the spec's rule (a p-value and
an effect size per column, the share of drifted columns) to give a `DriftReport`,
`histograms` the binned shares a report draws, `detectors` the streaming detectors (river)
over a model's error."""
