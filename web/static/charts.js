/* Charts from data the server rendered (issue 8). A page draws a chart by writing
     <canvas data-chart-config='{{ config|tojson }}' role="img" aria-label="..."></canvas>
   where config is a Chart.js configuration ({type, data, options}), and loading
     <script src="/static/vendor/chart.umd.min.js" defer></script>
     <script src="/static/charts.js" defer></script>
   in its {% block scripts %}. No inline code (the pages' CSP runs scripts from this origin only), so the data
   travels in an attribute. Every chart also needs a table or text with the same figures next to it: a canvas is
   an image to a screen reader, and without Chart.js (no npm at install) the page still carries the numbers. */
(function () {
  "use strict";

  function draw(canvas) {
    if (canvas.dataset.chartDrawn) {
      return;
    }
    var config;
    try {
      config = JSON.parse(canvas.dataset.chartConfig);
    } catch (err) {
      console.warn("chart config is not JSON", err);
      return;
    }
    config.options = config.options || {};
    // Animations delay the first paint and fight prefers-reduced-motion; the figures matter, not the motion.
    config.options.animation = false;
    if (config.options.maintainAspectRatio === undefined) {
      config.options.maintainAspectRatio = false;
    }
    new window.Chart(canvas, config);
    canvas.dataset.chartDrawn = "1";
  }

  function drawAll(root) {
    if (!window.Chart) {
      return;
    }
    root.querySelectorAll("canvas[data-chart-config]").forEach(draw);
  }

  document.addEventListener("DOMContentLoaded", function () {
    drawAll(document);
  });
  // Regions swapped in by live.js or htmx bring new canvases with them.
  document.addEventListener("htmx:afterSwap", function (event) {
    drawAll(event.target);
  });
  document.addEventListener("tutorpulse:swapped", function (event) {
    drawAll(event.target);
  });
}());
