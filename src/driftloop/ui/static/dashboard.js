// The dashboard's charts: every element with data-chart="ID" is drawn by uPlot from the JSON in
// the <script type="application/json" id="ID"> beside it ({x: [seconds], series: [{label,
// values}], label}). No network: uPlot is served from /ui/static.
(function () {
  "use strict";
  const palette = ["#2b95d6", "#d9822b", "#0f9960", "#7157d9", "#c23030", "#29a634", "#8a8f98", "#d13913"];

  // A few minutes of data (or one point) would stretch over years: show at least ten minutes.
  function xScale(x) {
    const min = x[0], max = x[x.length - 1];
    if (max - min >= 600) return { time: true };
    const mid = (min + max) / 2;
    return { time: true, auto: false, range: [mid - 300, mid + 300] };
  }

  function draw(element) {
    const data = JSON.parse(document.getElementById(element.dataset.chart).textContent);
    if (!data.x.length) {
      element.classList.add("empty");
      element.textContent = "No data yet.";
      return;
    }
    const width = Math.max(320, Math.min(1100, element.clientWidth || 900));
    const options = {
      width: width,
      height: 260,
      scales: { x: xScale(data.x) },
      tzDate: function (ts) { return uPlot.tzDate(new Date(ts * 1e3), "Etc/UTC"); },  // as the tables
      axes: [{}, { label: data.label, size: 60 }],
      series: [{}].concat(data.series.map(function (s, i) {
        return { label: s.label, stroke: palette[i % palette.length], width: 1.5, spanGaps: true,
                 points: { show: data.x.length < 60 } };
      })),
    };
    const columns = [data.x].concat(data.series.map(function (s) { return s.values; }));
    element.chart = new uPlot(options, columns, element);
  }

  document.querySelectorAll("[data-chart]").forEach(draw);
  // times written in UTC, shown in the reader's own time zone
  document.querySelectorAll("time[data-local]").forEach(function (element) {
    const at = new Date(element.getAttribute("datetime"));
    element.title = element.textContent;
    element.textContent = at.toLocaleString(undefined, {
      year: "numeric", month: "2-digit", day: "2-digit", hour: "2-digit", minute: "2-digit",
      timeZoneName: "short" });
  });
})();
