// codebook-monitor console: progressive enhancement only; every page works without it.
// - <body data-refresh="N">: reload the page every N seconds while it is visible and no form field has focus.
// - <button data-confirm="text">: ask before submitting.
(function () {
  "use strict";
  var body = document.body;
  var every = parseInt(body.getAttribute("data-refresh") || "0", 10);
  if (every > 0) {
    setInterval(function () {
      var el = document.activeElement;
      var typing = el && (el.tagName === "INPUT" || el.tagName === "TEXTAREA" || el.tagName === "SELECT");
      if (document.visibilityState === "visible" && !typing) {
        window.location.reload();
      }
    }, every * 1000);
  }
  document.addEventListener("click", function (ev) {
    var target = ev.target;
    if (!(target instanceof Element)) { return; }
    var button = target.closest("[data-confirm]");
    if (button && !window.confirm(button.getAttribute("data-confirm"))) {
      ev.preventDefault();
    }
  });
})();
