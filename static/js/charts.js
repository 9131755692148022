// Draw every plotly figure of the page. Each chart container names the
// <script type="application/json"> element holding its figure.
document.addEventListener("DOMContentLoaded", function () {
  document.querySelectorAll(".chart[data-figure]").forEach(function (el) {
    var spec = JSON.parse(document.getElementById(el.dataset.figure).textContent);
    Plotly.newPlot(el, spec.data, spec.layout, {displaylogo: false, responsive: true});
  });
});
