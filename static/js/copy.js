// Copy buttons of the integration panels: the text of the element named by
// data-copy goes to the clipboard; without the clipboard API (an insecure
// origin) the text is selected and copied the older way. No network needed.
document.addEventListener("DOMContentLoaded", function () {
  function done(button, text) {
    var label = button.textContent;
    button.textContent = text;
    setTimeout(function () { button.textContent = label; }, 1500);
  }
  function fallback(source) {
    var range = document.createRange();
    range.selectNodeContents(source);
    var selection = window.getSelection();
    selection.removeAllRanges();
    selection.addRange(range);
    var ok = false;
    try { ok = document.execCommand("copy"); } catch (e) { ok = false; }
    return ok;
  }
  document.querySelectorAll("button[data-copy]").forEach(function (button) {
    button.addEventListener("click", function () {
      var source = document.getElementById(button.dataset.copy);
      var text = source.textContent;
      if (navigator.clipboard && window.isSecureContext) {
        navigator.clipboard.writeText(text).then(
          function () { done(button, "Copied"); },
          function () { done(button, fallback(source) ? "Copied" : "Select and copy"); }
        );
      } else {
        done(button, fallback(source) ? "Copied" : "Select and copy");
      }
    });
  });
});
