// The admin console: polls the JSON API every 2 s and draws the current view.
// Plain DOM and hand-written SVG charts (no library, no build step). Every value from
// the API goes into the page as text (textContent), never as HTML.
"use strict";

const base = location.pathname.replace(/\/+$/, "");
const SVG = "http://www.w3.org/2000/svg";
let csrf = "";
let view = "overview";
let windowSeconds = 3600;
let busy = false;

// -- helpers ------------------------------------------------------------------------

function el(tag, attrs = {}, text) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs)) node.setAttribute(key, value);
  if (text !== undefined) node.textContent = text;
  return node;
}

function fmt(value, digits = 1) {
  if (value === null || value === undefined) return "–";
  if (typeof value === "number") {
    if (Math.abs(value) >= 1000) return Math.round(value).toLocaleString("en");
    return Number.isInteger(value) ? String(value) : value.toFixed(digits);
  }
  return String(value);
}

function pct(value) {
  return value === null || value === undefined ? "–" : (value * 100).toFixed(1) + " %";
}

async function api(name, options = {}) {
  const answer = await fetch(base + "/api/" + name, { credentials: "same-origin", ...options });
  if (answer.status === 401) {
    location.assign(base + "/login");
    throw new Error("signed out");
  }
  const body = await answer.json();
  if (!answer.ok) throw new Error(body.error ? body.error.message : "HTTP " + answer.status);
  return body;
}

function post(name, body) {
  return api(name, {
    method: "POST",
    headers: { "content-type": "application/json", "x-csrf-token": csrf },
    body: JSON.stringify(body),
  });
}

function fillTable(table, columns, rows) {
  table.replaceChildren();
  const head = el("tr");
  for (const [label] of columns) head.append(el("th", {}, label));
  table.append(el("thead"));
  table.tHead.append(head);
  const body = el("tbody");
  for (const row of rows) {
    const tr = el("tr");
    for (const [, cell] of columns) {
      const value = cell(row);
      const td = el("td");
      if (value instanceof Node) td.append(value);
      else td.textContent = fmt(value);
      tr.append(td);
    }
    body.append(tr);
  }
  if (!rows.length) {
    const tr = el("tr");
    tr.append(el("td", { colspan: String(columns.length), class: "muted" }, "nothing yet"));
    body.append(tr);
  }
  table.append(body);
}

// -- charts: one SVG polyline per series over the window ---------------------------

function chart(title, times, lines, unit) {
  const width = 320, height = 120, left = 40, bottom = 18, top = 8;
  const box = el("figure", { class: "chart" });
  box.append(el("figcaption", {}, title));
  const svg = document.createElementNS(SVG, "svg");
  svg.setAttribute("viewBox", `0 0 ${width} ${height}`);
  svg.setAttribute("role", "img");
  svg.setAttribute("aria-label", title);
  let max = 0;
  for (const line of lines) for (const v of line.values) if (v !== null && v > max) max = v;
  max = max > 0 ? max * 1.1 : 1;
  const x = (i) => left + ((width - left - 4) * i) / Math.max(1, times.length - 1);
  const y = (v) => top + (height - top - bottom) * (1 - v / max);
  const axis = document.createElementNS(SVG, "path");
  axis.setAttribute("d", `M${left} ${top}V${height - bottom}H${width - 4}`);
  axis.setAttribute("class", "axis");
  svg.append(axis);
  for (const [value, label] of [[max, fmt(max) + (unit || "")], [0, "0"]]) {
    const text = document.createElementNS(SVG, "text");
    text.setAttribute("x", String(left - 4));
    text.setAttribute("y", String(y(value) + 4));
    text.setAttribute("text-anchor", "end");
    text.textContent = label;
    svg.append(text);
  }
  for (const [i, anchor] of [[0, "start"], [times.length - 1, "end"]]) {
    const text = document.createElementNS(SVG, "text");
    text.setAttribute("x", String(x(i)));
    text.setAttribute("y", String(height - 4));
    text.setAttribute("text-anchor", anchor);
    text.textContent = new Date(times[i] * 1000).toLocaleTimeString("en-GB", { hour: "2-digit", minute: "2-digit" });
    svg.append(text);
  }
  lines.forEach((line, n) => {
    let d = "";
    let pen = false;
    line.values.forEach((v, i) => {
      if (v === null) { pen = false; return; }
      d += (pen ? "L" : "M") + x(i).toFixed(1) + " " + y(v).toFixed(1);
      pen = true;
    });
    const path = document.createElementNS(SVG, "path");
    path.setAttribute("d", d || "M0 0");
    path.setAttribute("class", "line line" + n);
    svg.append(path);
    // A point with no neighbour draws no segment: mark it with a dot so it shows.
    line.values.forEach((v, i) => {
      const alone = (line.values[i - 1] ?? null) === null && (line.values[i + 1] ?? null) === null;
      if (v === null || !alone) return;
      const dot = document.createElementNS(SVG, "circle");
      dot.setAttribute("cx", x(i).toFixed(1));
      dot.setAttribute("cy", y(v).toFixed(1));
      dot.setAttribute("r", "2");
      dot.setAttribute("class", "dot line" + n);
      svg.append(dot);
    });
  });
  box.append(svg);
  if (lines.length > 1) {
    const legend = el("div", { class: "legend" });
    lines.forEach((line, n) => legend.append(el("span", { class: "key key" + n }, line.label)));
    box.append(legend);
  }
  return box;
}

// -- views ------------------------------------------------------------------------------

function setStatus(status) {
  const pill = document.getElementById("status");
  const text = status.draining ? "draining" : status.ready ? "ready" : "not ready";
  pill.textContent = text + (status.state === "ok" ? "" : " · state " + status.state);
  pill.className = "pill " + (status.ready && status.state === "ok" ? "ok" : "warn");
  document.getElementById("replicas").textContent =
    status.replicas + (status.replicas === 1 ? " replica" : " replicas") + (status.partial ? " (partial)" : "");
}

async function showOverview() {
  const data = await api("overview?window=" + windowSeconds);
  setStatus(data.status);
  const now = data.last_minute;
  const cards = document.getElementById("cards");
  cards.replaceChildren();
  const items = [
    ["Requests/s", fmt(now.requests_per_s, 2), "card-rps"],
    ["Error rate", pct(now.error_rate), "card-errors"],
    ["In flight", fmt(now.in_flight), "card-inflight"],
    ["Latency p50 / p95", fmt(now.latency_p50_ms) + " / " + fmt(now.latency_p95_ms) + " ms", "card-latency"],
    ["TTFT p50 / p95", fmt(now.ttft_p50_ms) + " / " + fmt(now.ttft_p95_ms) + " ms", "card-ttft"],
    ["Tokens/s", fmt(now.tokens_per_s, 1), "card-tokens"],
    ["Refused/s", fmt(now.refused_per_s, 2), "card-refused"],
    ["Failed logins", fmt((data.logins || {}).failed || 0), "card-logins"],
  ];
  for (const [label, value, id] of items) {
    const card = el("div", { class: "stat", id });
    card.append(el("div", { class: "label" }, label), el("div", { class: "value" }, value));
    cards.append(card);
  }
  const s = data.series;
  const charts = document.getElementById("charts");
  charts.replaceChildren(
    chart("Requests/s", s.time, [{ label: "req/s", values: s.rps }]),
    chart("Error rate", s.time, [{ label: "errors", values: s.error_rate.map((v) => v * 100) }], " %"),
    chart("In flight (peak)", s.time, [{ label: "in flight", values: s.in_flight }]),
    chart("Latency (ms)", s.time, [{ label: "p50", values: s.p50 }, { label: "p95", values: s.p95 }]),
    chart("Time to first token (ms)", s.time, [{ label: "p50", values: s.ttft_p50 }, { label: "p95", values: s.ttft_p95 }]),
    chart("Tokens/s", s.time, [{ label: "tokens/s", values: s.tokens_per_s }]),
  );
}

async function showTargets() {
  const rows = await api("targets");
  fillTable(document.getElementById("targets-table"), [
    ["target", (r) => r.name],
    ["kind", (r) => r.kind],
    ["deployment", (r) => Object.entries(r.deployment).map(([k, v]) => k + "=" + v).join(" ") || "–"],
    ["health", (r) => el("span", { class: "pill " + (r.health === "ready" ? "ok" : "warn") }, r.health)],
    ["in flight / limit", (r) => r.in_flight + " / " + (r.limit === null ? "∞" : r.limit)],
    ["requests", (r) => r.requests],
    ["failures", (r) => r.failures],
    ["refused", (r) => r.refused],
    ["cooldowns", (r) => r.cooldowns],
    ["latency p50/p95 ms", (r) => fmt(r.latency_p50_ms) + " / " + fmt(r.latency_p95_ms)],
    ["TTFT p50/p95 ms", (r) => fmt(r.ttft_p50_ms) + " / " + fmt(r.ttft_p95_ms)],
    ["tokens/s", (r) => r.tokens_per_s],
  ], rows);
}

const REASONS = ["auth", "rate", "admission", "size", "blocked"];

function partyColumns(key) {
  return [
    [key, (r) => r[key]],
    ["requests", (r) => r.requests],
    ...REASONS.map((reason) => ["refused: " + reason, (r) => r.refusals[reason]]),
    ["tokens in", (r) => r.tokens_in],
    ["tokens out", (r) => r.tokens_out],
  ];
}

async function showClients() {
  const data = await api("clients");
  fillTable(document.getElementById("callers-table"), partyColumns("caller"), data.callers);
  fillTable(document.getElementById("clients-table"), partyColumns("client"), data.clients);
  document.getElementById("tracked").textContent =
    `Tracking ${data.tracked.callers} callers and ${data.tracked.clients} client addresses (the least recently seen are forgotten past 1024).`;
}

async function showRecent() {
  const rows = await api("recent");
  fillTable(document.getElementById("recent-table"), [
    ["time", (r) => (r.time || "").replace("T", " ").replace("Z", "")],
    ["request id", (r) => r.request_id],
    ["client", (r) => r.client],
    ["caller", (r) => r.caller],
    ["target", (r) => r.target],
    ["route", (r) => r.route],
    ["status", (r) => el("span", { class: "status s" + String(r.status)[0] }, String(r.status))],
    ["code", (r) => r.code],
    ["latency ms", (r) => r.latency_ms],
    ["TTFT ms", (r) => r.ttft_ms],
    ["tokens in/out", (r) => fmt(r.tokens_in) + " / " + fmt(r.tokens_out)],
    ["cancel reason", (r) => r.cancel_reason],
  ], rows);
}

function limitText(limit) {
  return limit ? `${fmt(limit.requests_per_minute)}/min, burst ${limit.burst}` : "no limit";
}

function button(text, attrs, onClick) {
  const b = el("button", { type: "button", ...attrs }, text);
  b.addEventListener("click", onClick);
  return b;
}

async function change(body) {
  const message = document.getElementById("control-message");
  try {
    const answer = await post("controls", body);
    const c = answer.change;
    message.className = "ok";
    message.textContent = `Changed ${c.subject}: ${JSON.stringify(c.before)} → ${JSON.stringify(c.after)}`;
  } catch (exc) {
    message.className = "error";
    message.textContent = "Refused: " + exc.message;
  }
  await refresh();
}

async function showControls() {
  const c = await api("controls");
  document.getElementById("ip-limit-now").textContent = limitText(c.ip_rate_limit);
  document.getElementById("global-now").textContent = String(c.max_concurrent_requests);
  const names = document.getElementById("caller-names");
  names.replaceChildren(...Object.keys(c.caller_rate_limits).map((n) => el("option", { value: n })));
  fillTable(document.getElementById("caller-limits-table"), [
    ["caller", (r) => r[0]],
    ["limit", (r) => limitText(r[1])],
    ["", (r) => button("Configured value", { class: "quiet" }, () => change({ control: "caller_rate_limit", caller: r[0], value: "default" }))],
  ], Object.entries(c.caller_rate_limits));
  const list = document.getElementById("blocklist");
  list.replaceChildren(...c.blocklist.map((network) => {
    const item = el("li", {}, network + " ");
    item.append(button("Unblock", { "data-unblock": network, class: "quiet" }, () => change({ control: "blocklist_remove", address: network })));
    return item;
  }));
  if (!c.blocklist.length) list.append(el("li", { class: "muted" }, "no blocked addresses"));
  fillTable(document.getElementById("target-controls"), [
    ["target", (r) => r[0]],
    ["max concurrent", (r) => (r[1].max_concurrent === null ? "∞" : r[1].max_concurrent)],
    ["set limit", (r) => {
      const input = el("input", { type: "number", min: "1", step: "1", class: "small", "data-target-limit": r[0] });
      const wrap = el("span");
      wrap.append(input, button("Apply", {}, () => change({ control: "target_max_concurrent", target: r[0], value: Number(input.value) })));
      return wrap;
    }],
    ["draining", (r) => (r[1].draining ? "yes" : "no")],
    ["", (r) => button(r[1].draining ? "Resume" : "Drain", { "data-drain": r[0] }, () => change({ control: "drain", target: r[0], value: !r[1].draining }))],
  ], Object.entries(c.targets));
}

async function showAudit() {
  const rows = await api("audit");
  fillTable(document.getElementById("audit-table"), [
    ["time", (r) => new Date(r.time * 1000).toLocaleTimeString("en-GB")],
    ["who", (r) => r.who],
    ["what", (r) => r.subject],
    ["before", (r) => JSON.stringify(r.before)],
    ["after", (r) => JSON.stringify(r.after)],
  ], rows);
}

const VIEWS = { overview: showOverview, targets: showTargets, clients: showClients, recent: showRecent, controls: showControls, audit: showAudit };

async function refresh() {
  if (busy) return;
  busy = true;
  try {
    await VIEWS[view]();
    document.body.dataset.loaded = view;
  } catch (exc) {
    document.body.dataset.error = exc.message;
  } finally {
    busy = false;
  }
}

function show(name) {
  view = name;
  for (const b of document.querySelectorAll("#tabs button")) b.classList.toggle("active", b.dataset.view === name);
  for (const section of document.querySelectorAll(".view")) section.hidden = section.id !== "view-" + name;
  delete document.body.dataset.loaded;
  refresh();
}

// -- wiring -------------------------------------------------------------------------------

for (const b of document.querySelectorAll("#tabs button")) b.addEventListener("click", () => show(b.dataset.view));
for (const b of document.querySelectorAll(".range button")) {
  b.addEventListener("click", () => {
    windowSeconds = Number(b.dataset.window);
    for (const other of document.querySelectorAll(".range button")) other.classList.toggle("active", other === b);
    refresh();
  });
}
document.getElementById("ip-limit-form").addEventListener("submit", (event) => {
  event.preventDefault();
  change({ control: "ip_rate_limit", value: { requests_per_minute: Number(document.getElementById("ip-rpm").value), burst: Number(document.getElementById("ip-burst").value) } });
});
document.querySelector("[data-reset=ip_rate_limit]").addEventListener("click", () => change({ control: "ip_rate_limit", value: "none" }));
document.querySelector("[data-default=ip_rate_limit]").addEventListener("click", () => change({ control: "ip_rate_limit", value: "default" }));
document.getElementById("caller-limit-form").addEventListener("submit", (event) => {
  event.preventDefault();
  change({ control: "caller_rate_limit", caller: document.getElementById("caller-name").value, value: { requests_per_minute: Number(document.getElementById("caller-rpm").value), burst: Number(document.getElementById("caller-burst").value) } });
});
document.getElementById("block-form").addEventListener("submit", (event) => {
  event.preventDefault();
  change({ control: "blocklist_add", address: document.getElementById("block-address").value });
});
document.getElementById("global-form").addEventListener("submit", (event) => {
  event.preventDefault();
  change({ control: "max_concurrent_requests", value: Number(document.getElementById("global-value").value) });
});
document.getElementById("logout").addEventListener("click", async () => {
  await post("logout", {}).catch(() => {});
  location.assign(base + "/login");
});

(async () => {
  const session = await api("session");
  csrf = session.csrf_token;
  const wanted = location.hash.replace("#", "");
  show(VIEWS[wanted] ? wanted : "overview");
  setInterval(() => { if (view !== "controls") refresh(); }, 2000);
})();
