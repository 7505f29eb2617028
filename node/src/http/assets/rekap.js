// Rekap dashboard: keeps a region's page live from the node's server-sent
// events (one "view" event per change, at most four a second). The page is
// complete without this script; it only replaces figures in place.
(function () {
  "use strict";
  var url = document.body.dataset.live;
  if (!url || !window.EventSource) return;
  var fmt = new Intl.NumberFormat("id-ID");
  function pct(part, whole) {
    if (!whole) return "-";
    return (part * 100 / whole).toFixed(2).replace(".", ",") + "%";
  }
  function width(part, whole) {
    return (whole ? part * 100 / whole : 0).toFixed(2) + "%";
  }
  function set(scope, field, text) {
    var el = scope.querySelector('[data-f="' + field + '"]');
    if (el && el.textContent !== text) { el.textContent = text; return true; }
    return false;
  }
  // The page's zone (WIB, WITA or WIT, from its provinsi), as the server
  // wrote it: "9 Des 2020 19.42.05 WITA", whatever the reader's own clock.
  var bulan = ["Jan", "Feb", "Mar", "Apr", "Mei", "Jun", "Jul", "Agu", "Sep", "Okt", "Nov", "Des"];
  function localTime(ms) {
    var at = document.querySelector('[data-f="at"]');
    var tz = at ? Number(at.dataset.tz) : 420;
    var t = new Date(ms + tz * 60000);
    function two(n) { return (n < 10 ? "0" : "") + n; }
    return t.getUTCDate() + " " + bulan[t.getUTCMonth()] + " " + t.getUTCFullYear() + " " +
      two(t.getUTCHours()) + "." + two(t.getUTCMinutes()) + "." + two(t.getUTCSeconds()) + " " +
      (at ? at.dataset.zone : "WIB");
  }
  function bar(scope, field, part, whole) {
    var el = scope.querySelector('[data-f="' + field + '"]');
    if (el) el.style.width = width(part, whole);
  }
  function totals(scope, t) {
    var changed = false;
    changed = set(scope, "sah", fmt.format(t.sah)) || changed;
    changed = set(scope, "tidak_sah", fmt.format(t.tidak_sah)) || changed;
    changed = set(scope, "total", fmt.format(t.total)) || changed;
    changed = set(scope, "tps_reported", fmt.format(t.tps_reported)) || changed;
    set(scope, "tps_total", fmt.format(t.tps_total));
    set(scope, "progress", pct(t.tps_reported, t.tps_total));
    set(scope, "missing", fmt.format(t.tps_total - t.tps_reported));
    set(scope, "tps_janggal", fmt.format(t.tps_janggal));
    bar(scope, "progress_bar", t.tps_reported, t.tps_total);
    return changed;
  }
  // The page as the node has it now (asking past the browser's cache). A
  // node keeps a rendered page for up to a tick, so one that does not yet
  // show the view's count is asked for again.
  function refreshList(list, reported, tries) {
    fetch(location.href, { cache: "no-cache" }).then(function (r) { return r.text(); }).then(function (html) {
      var doc = new DOMParser().parseFromString(html, "text/html");
      var fresh = doc.getElementById("tps-list");
      var count = doc.querySelector('main [data-f="tps_reported"]');
      if (count && count.textContent !== reported && tries > 1) {
        setTimeout(function () { refreshList(list, reported, tries - 1); }, 300);
        return;
      }
      if (fresh) list.innerHTML = fresh.innerHTML;
    });
  }
  var lastReported = null;
  var lastIndex = 0;
  function apply(v) {
    // After a reconnect to a node that is behind, keep the newer figures.
    if (v.applied_index < lastIndex) return;
    lastIndex = v.applied_index;
    var main = document.querySelector("main");
    var t = v.totals;
    set(document, "applied_index", String(v.applied_index));
    set(document, "at", localTime(Date.now()));
    t.candidates.forEach(function (c) {
      var row = main.querySelector('tr[data-c="' + c.candidate_id + '"]');
      if (!row) return;
      set(row, "votes", fmt.format(c.votes));
      set(row, "share", pct(c.votes, t.sah));
      bar(row, "bar", c.votes, t.sah);
    });
    totals(main.querySelector("section.card"), t);
    v.children.forEach(function (c) {
      var row = main.querySelector('tr[data-region="' + c.code + '"]');
      if (row && totals(row, c)) {
        row.classList.remove("changed"); void row.offsetWidth; row.classList.add("changed");
      }
    });
    // A desa's TPS list is not in the view: fetch this page again and swap
    // the list in, when its count of reported TPS moved.
    var list = document.getElementById("tps-list");
    if (list && lastReported !== null && lastReported !== t.tps_reported) {
      refreshList(list, fmt.format(t.tps_reported), 3);
    }
    lastReported = t.tps_reported;
    document.body.dataset.views = String(Number(document.body.dataset.views || 0) + 1);
  }
  // A node that is full or down answers the stream with an error status,
  // and the browser then gives up on it: open it again a little later
  // (through a balancer, on another node), at a random moment so a
  // crowd does not come back all at once.
  function connect() {
    var es = new EventSource(url);
    es.addEventListener("view", function (e) { apply(JSON.parse(e.data)); });
    es.onopen = function () { document.body.classList.add("connected"); };
    es.onerror = function () {
      document.body.classList.remove("connected");
      if (es.readyState === EventSource.CLOSED) {
        setTimeout(connect, 3000 + Math.random() * 4000);
      }
    };
  }
  connect();
})();
