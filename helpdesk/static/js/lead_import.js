// The lead import's progress bar: polls the status every second and reloads the page (to show the
// report) when the import is done. Without JavaScript the page has a reload link.
(function () {
  "use strict";
  var box = document.getElementById("import-progress");
  if (!box || box.getAttribute("data-done") === "true") { return; }
  var url = box.getAttribute("data-status-url");
  var bar = document.getElementById("import-bar");
  var percent = document.getElementById("import-percent");
  var count = document.getElementById("import-count");
  var state = document.getElementById("import-state");
  function set(name, value) {
    var el = document.querySelector("[data-count=" + name + "]");
    if (el) { el.textContent = String(value); }
  }
  function poll() {
    fetch(url, {credentials: "same-origin", headers: {"Accept": "application/json"}})
      .then(function (r) { return r.ok ? r.json() : null; })
      .then(function (s) {
        if (!s) { window.setTimeout(poll, 3000); return; }
        if (bar) { bar.max = s.total || 1; bar.value = s.processed; }
        if (percent) { percent.textContent = String(s.percent); }
        if (count) { count.textContent = s.processed + " / " + s.total; }
        if (state) { state.textContent = s.status_label || s.status; }
        set("created", s.created); set("merged", s.merged); set("rejected", s.rejected);
        if (s.done || s.failed) { window.location.reload(); return; }
        window.setTimeout(poll, 1000);
      })
      .catch(function () { window.setTimeout(poll, 3000); });
  }
  window.setTimeout(poll, 1000);
}());
