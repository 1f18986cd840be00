// Small progressive enhancements; the desk works without JavaScript.
document.addEventListener("DOMContentLoaded", function () {
  var all = document.getElementById("select-all");
  if (all) {
    all.addEventListener("change", function () {
      document.querySelectorAll("input[name=ticket_ids]").forEach(function (cb) { cb.checked = all.checked; });
    });
  }
  document.querySelectorAll("[data-canned]").forEach(function (btn) {
    btn.addEventListener("click", function () {
      var target = document.getElementById(btn.getAttribute("data-target"));
      if (target) { target.value = (target.value ? target.value + "\n" : "") + btn.getAttribute("data-canned"); target.focus(); }
    });
  });
});
