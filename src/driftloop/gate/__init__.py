"""Gate: may a challenger replace the champion?

`metrics` scores predictions (accuracy, F1, ROC AUC, log loss, RMSE, MAE, R²); `gate` compares
a challenger with the champion on the same holdout rows by a paired bootstrap and says whether
it is not worse (or better) with the spec's confidence, as a stored report."""
