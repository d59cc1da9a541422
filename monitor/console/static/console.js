// driftwarden console: progressive enhancement only; every page works without it.
(function () {
  "use strict";
  // times are UTC in the HTML (and stay so in the title, shown on hover): show local time
  document.querySelectorAll("time[datetime]").forEach(function (el) {
    var at = new Date(el.getAttribute("datetime"));
    if (!isNaN(at.getTime())) {
      el.textContent = at.toLocaleString();
    }
  });
  // auto-refresh, but never while someone is typing a reason into a form
  var every = parseInt(document.body.getAttribute("data-refresh") || "0", 10);
  if (every > 0) {
    setInterval(function () {
      var busy = Array.prototype.some.call(
        document.querySelectorAll("input[type=text], input[type=password], select"),
        function (el) { return el === document.activeElement || (el.type !== "select-one" && el.value); }
      );
      if (!busy) { window.location.reload(); }
    }, every * 1000);
  }
})();
