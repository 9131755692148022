// Draw the plotly figures of the page as they come into view. This small
// script is loaded with `defer`; the plotly bundle (≈ 4.8 MB) is fetched once,
// only when the first figure nears the screen, so the page's text and its
// inline SVG charts never wait for it. Each chart container names the
// <script type="application/json"> holding its figure. No toolbar: its
// buttons would add stops to the tab order; the container carries the
// chart's text summary (role="img", aria-label).
(function () {
  var bundle = document.currentScript && document.currentScript.dataset.plotly;
  var queue = [];
  var loading = false;

  function draw(el) {
    if (el.dataset.drawn) { return; }
    el.dataset.drawn = "1";
    var spec = JSON.parse(document.getElementById(el.dataset.figure).textContent);
    Plotly.newPlot(el, spec.data, spec.layout, {displayModeBar: false, responsive: true});
  }
  function want(el) {
    if (window.Plotly) { draw(el); return; }
    queue.push(el);
    if (loading || !bundle) { return; }
    loading = true;
    var script = document.createElement("script");
    script.src = bundle;
    script.onload = function () { queue.splice(0).forEach(draw); };
    document.head.appendChild(script);
  }
  function start() {
    var charts = document.querySelectorAll(".chart[data-figure]");
    if (!("IntersectionObserver" in window)) { charts.forEach(want); return; }
    var seen = new IntersectionObserver(function (entries) {
      entries.forEach(function (entry) {
        if (entry.isIntersecting) { seen.unobserve(entry.target); want(entry.target); }
      });
    }, {rootMargin: "300px 0px"});
    charts.forEach(function (el) { seen.observe(el); });
  }
  if (document.readyState === "loading") { document.addEventListener("DOMContentLoaded", start); }
  else { start(); }
})();
