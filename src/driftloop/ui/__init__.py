"""UI: what people look at — the HTML reports (and, later, the dashboard). Rendering only: the
numbers come from the controller's results; nothing here computes them."""
