// Stasiun Rekap: checks the C.Hasil arithmetic as it is typed (the
// station's server runs the node's own rules: nothing is duplicated here)
// and turns each entry's state live as the outbox delivers it.
(function () {
  "use strict";
  var form = document.getElementById("chasil");
  if (form) {
    var timer = null;
    var seq = 0;
    var box = document.getElementById("periksa");
    var check = function () {
      var mine = ++seq;
      fetch("/periksa", { method: "POST", body: new URLSearchParams(new FormData(form)) })
        .then(function (r) { return r.json(); })
        .then(function (v) {
          if (mine !== seq) return;
          box.innerHTML = v.html;
          var bad = v.verdict.fields || [];
          Array.prototype.forEach.call(form.querySelectorAll("input[name]"), function (i) {
            if (bad.indexOf(i.name) >= 0) i.setAttribute("aria-invalid", "true");
            else i.removeAttribute("aria-invalid");
          });
          form.dataset.ok = v.ok ? "1" : "0";
        })
        .catch(function () {});
    };
    form.addEventListener("input", function () {
      clearTimeout(timer);
      timer = setTimeout(check, 120);
    });
  }
  var poll = function () {
    fetch("/status.json", { cache: "no-store" })
      .then(function (r) { return r.json(); })
      .then(function (s) {
        Array.prototype.forEach.call(document.querySelectorAll("[data-key]"), function (el) {
          var e = s.entries[el.dataset.key];
          if (!e) return;
          if (el.textContent !== e.text) el.textContent = e.text;
          el.className = "state " + e.state;
        });
        Object.keys(s.counts).forEach(function (k) {
          var el = document.querySelector('[data-count="' + k + '"]');
          if (el) el.textContent = s.counts[k];
        });
        var link = document.getElementById("link");
        if (link) {
          link.className = s.link.online ? "online" : "offline";
          link.textContent = s.link.online ? "Tersambung ke Rekap" : "Tidak tersambung";
        }
        var why = document.getElementById("why");
        if (why) {
          why.textContent = s.link.why || "";
          why.className = s.link.why ? "shown" : "";
        }
      })
      .catch(function () {})
      .then(function () { setTimeout(poll, 1000); });
  };
  setTimeout(poll, 1000);
})();
