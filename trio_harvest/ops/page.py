"""The live page served at ``/`` of the ops endpoint: one self-contained HTML document.

Owns the page only: inline CSS and a few lines of inline JavaScript that fetch ``status`` (the
``/status`` JSON, relative to the page) every few seconds (``?every=S``, default 2) and draw it:
health with its reasons, and per venue and connection the frame rates, streams, lane fill,
writes, gaps, backfill, journal and dead letter. Rates are the difference of two fetches. It also
reads the host's ``/status`` of ``--workers`` (one section per worker). Never loads anything from
elsewhere (no external script, style, font or image), never writes anything back.
"""

from __future__ import annotations

_CSS = """
body{font:14px/1.4 system-ui,sans-serif;margin:1.2em;color:#1d2330;background:#f6f7f9}
h1{font-size:20px;margin:0 0 .3em}h2{font-size:16px;margin:1.2em 0 .4em}
h3{font-size:15px;margin:1em 0 .3em}
table{border-collapse:collapse;background:#fff;margin-bottom:.6em}
th,td{padding:3px 9px;border-bottom:1px solid #e3e6eb;text-align:right;white-space:nowrap}
th{background:#eceff3;font-weight:600}td.l,th.l{text-align:left}
.badge{display:inline-block;padding:1px 9px;border-radius:9px;color:#fff;font-weight:600}
.healthy{background:#2e7d32}.degraded{background:#c62828}.unknown{background:#757575}
.bar{display:inline-block;width:90px;height:9px;background:#e3e6eb;vertical-align:middle}
.bar i{display:block;height:9px;background:#1976d2}.bar i.hot{background:#c62828}
.muted{color:#6b7380}.err{color:#c62828}ul{margin:.2em 0 .6em 1.2em;padding:0}
.grid{display:flex;flex-wrap:wrap;gap:0 2em}
"""

_JS = r"""
const every = Math.max(0.5, Number(new URLSearchParams(location.search).get("every")) || 2);
let prev = null;
function el(tag, attrs, ...kids) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) e.setAttribute(k, v);
  for (const k of kids) e.append(k instanceof Node ? k : String(k ?? "–"));
  return e;
}
function num(v, d) {
  if (v === null || v === undefined) return "–";
  return Number(v).toLocaleString("en-US", {maximumFractionDigits: d ?? 0});
}
function rate(now, before, dt) {
  return before === undefined || !(dt > 0) ? "…" : num(Math.max(0, now - before) / dt, 1);
}
function bar(f) {
  const w = Math.min(100, Math.round(100 * (f || 0)));
  return el("span", {class: "bar", title: w + "%"}, el("i", {style: "width:" + w + "%",
            class: f >= 0.5 ? "hot" : ""}));
}
function table(head, rows) {
  const t = el("table", {}, el("tr", {}, ...head.map((h, i) => el("th", i ? {} : {class: "l"}, h))));
  for (const r of rows) t.append(el("tr", {}, ...r.map((c, i) => el("td", i ? {} : {class: "l"}, c))));
  return t;
}
function section(doc, before, dt, title) {
  const s = el("section", {});
  const st = doc.status || "unknown";
  s.append(el("h2", {}, title ? title + " " : "", el("span", {class: "badge " + st}, st),
              el("span", {class: "muted"}, "  venue " + (doc.venue || "–") + ", up " +
                 num(doc.uptime_s) + " s, " + num(doc.frames) + " frames")));
  const reasons = doc.reasons || [];
  if (reasons.length) s.append(el("ul", {class: "err"}, ...reasons.map(r => el("li", {}, r))));
  const notes = doc.notes || [];
  if (notes.length) s.append(el("ul", {class: "muted"}, ...notes.map(r => el("li", {}, r))));
  const sb = {};
  for (const r of doc.streams_by_connection || []) {
    const a = sb[r.connection] ||= {streams: 0, delivering: 0, stale: 0};
    a.streams += r.streams; a.delivering += r.delivering; a.stale += r.stale;
  }
  const pc = before ? Object.fromEntries((before.connections || []).map(c => [c.label, c.frames])) : {};
  s.append(el("h3", {}, "Connections"), table(
    ["venue / connection", "up", "msg/s", "frames", "streams", "delivering", "stale",
     "reconnects", "failures", "last error"],
    (doc.connections || []).map(c => [(c.venue || doc.venue) + " " + c.label,
      c.connected ? "yes" : "no", rate(c.frames, pc[c.label], dt), num(c.frames),
      num((sb[c.label] || {}).streams), num((sb[c.label] || {}).delivering),
      num((sb[c.label] || {}).stale), num(c.reconnects), num(c.failures), c.last_error || ""])));
  const lanes = doc.lanes_by_kind || {};
  const writes = doc.writes || {};
  const pw = before ? before.writes || {} : {};
  const kinds = [...new Set([...Object.keys(lanes), ...Object.keys(writes)])].sort();
  s.append(el("h3", {}, "Lanes and writes, by kind"), table(
    ["kind", "lanes", "buffered", "fullest lane", "", "above high", "rows/s", "rows written",
     "files", "dead-lettered", "lost", "failures", "last write s"],
    kinds.map(k => { const l = lanes[k] || {}, w = writes[k] || {};
      return [k, num(l.lanes), num(l.rows), num(100 * (l.fill_max || 0), 1) + " %",
        bar(l.fill_max), num(l.above_high), rate(w.rows_written, (pw[k] || {}).rows_written, dt),
        num(w.rows_written), num(w.files_written), num(w.rows_deadlettered), num(w.rows_lost),
        num(w.write_failures), num(w.last_write_age_s, 1)]; })));
  const adv = doc.adversity || {}, bf = adv.backfill || {}, j = doc.journal, dl = doc.deadletter || {};
  const gaps = Object.entries(adv.gaps || {});
  const side = el("div", {class: "grid"});
  side.append(el("div", {}, el("h3", {}, "Gaps"), table(["reason", "rows"],
    gaps.length ? gaps.map(([r, n]) => [r, num(n)]) : [["none", "0"]])));
  side.append(el("div", {}, el("h3", {}, "Backfill"), table(["", ""], [
    ["requests", num(bf.requests)], ["trades written", num(bf.rows)],
    ["ids waiting", num(adv.missing_ids_open)], ["ids unfilled", num(bf.unfilled_ids)],
    ["rate-limited", num(bf.rate_limited)]])));
  side.append(el("div", {}, el("h3", {}, "Journal"), table(["", ""], j ? [
    ["state", j.failing ? "FAILING: " + j.failing : "protecting"], ["on disk MB",
    num(j.disk_bytes / 1e6, 1)], ["segments", num(j.segments)], ["records", num(j.records)],
    ["unprotected", num(j.unprotected)]] : [["state", "off"]])));
  side.append(el("div", {}, el("h3", {}, "Dead letter"), table(["", ""], [
    ["files", num(dl.files)], ["rows", num(dl.rows)],
    ["recovered rows", num((doc.recovery || {}).rows)]])));
  s.append(side);
  s.append(el("h3", {}, "Stalest streams ", el("span", {class: "muted"},
    "(" + (doc.streams || []).length + " of " + num(doc.streams_total) + ")")), table(
    ["stream", "connection", "silent s", "stale after s", "delivering"],
    (doc.streams || []).map(x => [x.stream, x.connection, num(x.staleness_s, 1),
      num(x.stale_after_s), x.delivering ? "yes" : "no"])));
  s.append(el("h3", {}, "Fullest lanes ", el("span", {class: "muted"},
    "(" + (doc.lanes || []).length + " of " + num(doc.lanes_total) + ")")), table(
    ["lane", "rows", "high", "capacity", "fill"],
    (doc.lanes || []).map(l => [l.kind + "/" + l.symbol, num(l.level), num(l.high),
      num(l.capacity), bar(l.level / l.capacity)])));
  return s;
}
function sections(doc, before, dt, title) {
  if (!doc.venues) return [section(doc, before, dt, title)];
  return Object.entries(doc.venues).map(([v, d]) => section(d,
    before && before.venues ? before.venues[v] : null, dt, title));
}
function draw(doc, before, dt) {
  const root = document.getElementById("live");
  const out = [];
  if (doc.workers) {
    for (const [i, w] of Object.entries(doc.workers)) {
      const b = before && before.workers && before.workers[i] ? before.workers[i].status : null;
      if (w.status) out.push(...sections(w.status, b, dt, "worker " + i));
      else out.push(el("h2", {}, "worker " + i + " ", el("span", {class: "badge unknown"},
          w.up ? "no status yet" : "not running")));
    }
  } else out.push(...sections(doc, before, dt, ""));
  root.replaceChildren(...out);
  document.getElementById("when").textContent = "updated " + new Date().toLocaleTimeString() +
    ", every " + every + " s";
}
async function tick() {
  try {
    const r = await fetch("status", {cache: "no-store"});
    const doc = await r.json();
    const t = performance.now() / 1000;
    draw(doc, prev && prev.doc, prev ? t - prev.t : 0);
    prev = {doc, t};
  } catch (e) {
    document.getElementById("when").textContent = "cannot reach the harvester: " + e;
  }
  setTimeout(tick, every * 1000);
}
tick();
"""

PAGE = f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<link rel="icon" href="data:,">
<title>trio_harvest live</title>
<style>{_CSS}</style></head>
<body><h1>trio_harvest <span class="muted" id="when">loading…</span></h1>
<div id="live"></div>
<script>{_JS}</script>
</body></html>
""".encode()
