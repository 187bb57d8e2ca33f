// quaycast console: progressive enhancement only. Every page works without it.
"use strict";
(function () {
  // Copy buttons: shown only where a script can copy.
  document.querySelectorAll("[data-copy]").forEach(function (btn) {
    var input = document.getElementById(btn.getAttribute("data-copy"));
    if (!input) return;
    btn.hidden = false;
    btn.addEventListener("click", function () {
      var done = function () { btn.textContent = "Copied"; };
      if (navigator.clipboard && window.isSecureContext) {
        navigator.clipboard.writeText(input.value).then(done, function () { input.select(); });
      } else {
        input.select();
        try { document.execCommand("copy"); done(); } catch (e) { /* selected: copy by hand */ }
      }
    });
  });

  // Confirmations before changes that cannot be undone.
  document.querySelectorAll("form[data-confirm]").forEach(function (form) {
    form.addEventListener("submit", function (ev) {
      if (ev.submitter && ev.submitter.hasAttribute("data-confirm")) return;
      if (!window.confirm(form.getAttribute("data-confirm"))) ev.preventDefault();
    });
  });
  document.querySelectorAll("button[data-confirm]").forEach(function (btn) {
    btn.addEventListener("click", function (ev) {
      if (!window.confirm(btn.getAttribute("data-confirm"))) ev.preventDefault();
    });
  });

  // Event toggles: "all of this group" ticks its members; unticking a member unticks the group.
  var all = document.querySelector("input[data-all]");
  document.querySelectorAll("input[data-group-all]").forEach(function (g) {
    var name = g.getAttribute("data-group-all");
    var members = document.querySelectorAll('input[data-member="' + name + '"]');
    g.addEventListener("change", function () {
      members.forEach(function (m) { m.checked = g.checked; });
    });
    members.forEach(function (m) {
      m.addEventListener("change", function () {
        if (!m.checked) { g.checked = false; if (all) all.checked = false; }
      });
    });
  });
  if (all) {
    all.addEventListener("change", function () {
      document.querySelectorAll("fieldset.group input[type=checkbox]").forEach(function (c) { c.checked = all.checked; });
    });
  }

  // Options shown for the choice they apply to: signing options for their profiles, a layout
  // preset's headers and the custom layout's fields for the layout chosen.
  [["signing_profile", "data-profiles"], ["layout_preset", "data-layouts"]].forEach(function (pair) {
    var select = document.getElementById(pair[0]);
    if (!select) return;
    var show = function () {
      document.querySelectorAll("[" + pair[1] + "]").forEach(function (f) {
        f.hidden = f.getAttribute(pair[1]).split(" ").indexOf(select.value) < 0;
      });
    };
    select.addEventListener("change", show);
    show();
  });

  // Live page: follow deliveries as server-sent events, newest first.
  var status = document.getElementById("live-status");
  var table = document.getElementById("live");
  if (status && table && window.EventSource) {
    var body = table.tBodies[0];
    var src = new EventSource(status.getAttribute("data-stream"));
    src.addEventListener("open", function () { status.textContent = "Following deliveries as they happen, newest first."; });
    src.addEventListener("error", function () { status.textContent = "Connection lost: reconnecting…"; });
    src.addEventListener("delivery", function (ev) {
      var d = JSON.parse(ev.data);
      var tr = document.createElement("tr");
      tr.className = "fresh";
      var cells = [["Time", d.at], ["Endpoint", d.endpoint], ["Event", d.type], ["Entity", d.entity],
        ["Attempt", String(d.attempt)], ["Status", d.status], ["Latency", d.duration], ["Outcome", d.outcome]];
      cells.forEach(function (c, i) {
        var td = document.createElement("td");
        td.setAttribute("data-label", c[0]);
        if (i === 4 || i === 5 || i === 6) td.className = "num";
        if (i === 1) {
          var a = document.createElement("a");
          a.href = "/ui/endpoints/" + encodeURIComponent(c[1]);
          a.textContent = c[1];
          td.appendChild(a);
        } else if (i === 7) {
          var s = document.createElement("span");
          s.className = "pill " + (c[1] === "delivered" ? "ok" : "bad");
          s.textContent = c[1];
          td.appendChild(s);
        } else {
          td.textContent = c[1];
        }
        tr.appendChild(td);
      });
      body.insertBefore(tr, body.firstChild);
      while (body.rows.length > 200) body.deleteRow(body.rows.length - 1);
    });
  }
})();
