// Charts of the indicator dashboard. The data comes from json_script blocks
// (not executed), the library from static/vendor/: nothing from the network
// and nothing inline, so the page works under CSP script-src 'self'.
(function () {
  "use strict";
  var COLORS = ["#1d5fa8", "#067647", "#b54708", "#7a5af8", "#b42318", "#0e9384"];
  var RISK_COLORS = ["#67c587", "#fedf89", "#fdb022", "#f97066", "#d92d20", "#912018", "#98a2b3"];

  function readJson(id) {
    var el = document.getElementById(id);
    return el ? JSON.parse(el.textContent) : null;
  }

  function drawTrend() {
    var data = readJson("trend-data");
    var canvas = document.getElementById("trend-chart");
    if (!data || !canvas) { return; }
    new window.Chart(canvas, {
      type: "line",
      data: {
        labels: data.labels,
        datasets: data.series.map(function (s, i) {
          return {
            label: s.label, data: s.values, spanGaps: true, tension: 0.2,
            borderColor: COLORS[i % COLORS.length], backgroundColor: COLORS[i % COLORS.length]
          };
        })
      },
      options: {
        animation: false, responsive: true, maintainAspectRatio: false,
        interaction: { mode: "index", intersect: false },
        scales: { y: { suggestedMin: 0, suggestedMax: 100, ticks: { callback: function (v) { return v + "%"; } } } },
        plugins: { legend: { position: "bottom" } }
      }
    });
    canvas.setAttribute("data-rendered", "1");
  }

  function drawRisk() {
    var data = readJson("risk-data");
    var canvas = document.getElementById("risk-chart");
    if (!data || !canvas) { return; }
    new window.Chart(canvas, {
      type: "bar",
      data: {
        labels: data.labels,
        datasets: [{ data: data.values, backgroundColor: RISK_COLORS }]
      },
      options: {
        animation: false, responsive: true, maintainAspectRatio: false,
        plugins: { legend: { display: false } },
        scales: { y: { beginAtZero: true, ticks: { precision: 0 } } }
      }
    });
    canvas.setAttribute("data-rendered", "1");
  }

  function draw() {
    if (typeof window.Chart === "undefined") { return; }
    drawTrend();
    drawRisk();
  }

  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", draw);
  } else {
    draw();
  }
})();
