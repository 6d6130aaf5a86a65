"""UI: what people look at — the dashboard (`dashboard`, served by `app` or by the prediction
server) and the HTML reports. Rendering only: the numbers come from the store and the
controller's results; nothing here computes them."""
