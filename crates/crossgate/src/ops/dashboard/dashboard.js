// The crossgate admin dashboard. Plain DOM and SVG, no framework.
// Everything shown comes from requests (origins, routes, request ids are
// attacker-controlled), so it is only ever written with textContent and
// setAttribute on elements built here; nothing from the data is parsed as HTML.
"use strict";
(() => {
  const DATA = "/api/dashboard";
  const POLL_MS = 2000;
  const BUCKETS = 61; // 60 closed intervals and the open one
  const TOKEN_KEY = "crossgate-admin-token";
  const REASON_COLORS = {
    origin_not_allowed: "#e5484d",
    method_not_allowed: "#f76b15",
    header_not_allowed: "#ffb224",
    private_network_not_allowed: "#8e4ec6",
    malformed_request: "#0090ff",
    websocket_origin_not_allowed: "#d6409f",
    other: "#8b8d98",
  };
  const ROUTE_PALETTE = ["#3e63dd", "#12a594", "#e54666", "#f76b15", "#8e4ec6", "#0090ff", "#ad7f58", "#46a758"];
  const SVG_NS = "http://www.w3.org/2000/svg";

  const $ = (id) => document.getElementById(id);
  const number = new Intl.NumberFormat("en-US");
  const clock = (unix) => new Date(unix * 1000).toLocaleTimeString("en-GB", { hour12: false });

  function el(tag, text, className) {
    const node = document.createElement(tag);
    if (text !== undefined && text !== null) node.textContent = String(text);
    if (className) node.className = className;
    return node;
  }

  function svg(tag, attributes) {
    const node = document.createElementNS(SVG_NS, tag);
    for (const [name, value] of Object.entries(attributes)) node.setAttribute(name, String(value));
    return node;
  }

  function reasonClass(reason) {
    return Object.prototype.hasOwnProperty.call(REASON_COLORS, reason) ? reason : "other";
  }

  function badge(text, className) {
    return el("span", text, "badge " + className);
  }

  function cell(content, className) {
    const td = el("td", null, className);
    if (content instanceof Node) td.append(content);
    else td.textContent = String(content);
    return td;
  }

  function fillTable(id, rows, cells, emptyText) {
    const table = $(id);
    const body = table.tBodies[0];
    body.replaceChildren();
    if (rows.length === 0) {
      const td = cell(emptyText, "empty");
      td.colSpan = table.tHead.rows[0].cells.length;
      const tr = el("tr");
      tr.append(td);
      body.append(tr);
      return;
    }
    for (const row of rows) {
      const tr = el("tr");
      tr.append(...cells(row));
      body.append(tr);
    }
  }

  function swatch(color) {
    const icon = svg("svg", { viewBox: "0 0 10 10", "aria-hidden": "true" });
    icon.append(svg("rect", { width: 10, height: 10, rx: 2, fill: color }));
    return icon;
  }

  function legend(id, keys, colorOf) {
    const list = $(id);
    list.replaceChildren();
    for (const key of keys) {
      const item = el("li");
      item.append(swatch(colorOf(key)), el("span", key));
      list.append(item);
    }
  }

  // A round axis maximum whose quarter (one grid line) is a round number too.
  function niceMax(value) {
    const quarter = Math.max(1, value / 4);
    const magnitude = Math.pow(10, Math.floor(Math.log10(quarter)));
    const step = [1, 2, 5, 10].map((m) => m * magnitude).find((candidate) => candidate >= quarter);
    return 4 * step;
  }

  // Stacked bars, one per interval, newest on the right.
  function stackedBars(chart, buckets, keys, valueOf, colorOf, interval) {
    const width = 640, height = 220, left = 40, right = 8, top = 10, bottom = 24;
    const plotWidth = width - left - right, plotHeight = height - top - bottom;
    chart.replaceChildren();
    const totals = buckets.map((bucket) => keys.reduce((sum, key) => sum + valueOf(bucket, key), 0));
    const max = niceMax(Math.max(0, ...totals));
    for (let i = 0; i <= 4; i++) {
      const y = top + plotHeight - (plotHeight * i) / 4;
      chart.append(svg("line", { x1: left, x2: width - right, y1: y, y2: y, class: "grid-line" }));
      const label = svg("text", { x: left - 6, y: y + 4, "text-anchor": "end", class: "axis" });
      label.textContent = number.format(Math.round((max * i) / 4));
      chart.append(label);
    }
    const slot = plotWidth / BUCKETS;
    const offset = BUCKETS - buckets.length;
    buckets.forEach((bucket, index) => {
      const x = left + (offset + index) * slot;
      let y = top + plotHeight;
      for (const key of keys) {
        const value = valueOf(bucket, key);
        if (value <= 0) continue;
        const barHeight = (plotHeight * value) / max;
        y -= barHeight;
        const bar = svg("rect", { x: x + 1, y, width: Math.max(1, slot - 2), height: barHeight, fill: colorOf(key), rx: 1.5 });
        const tip = svg("title", {});
        tip.textContent = key + ": " + number.format(value) + " (until " + clock(bucket.end) + ")";
        bar.append(tip);
        chart.append(bar);
      }
    });
    const labelEvery = 15;
    for (let index = buckets.length - 1; index >= 0; index -= labelEvery) {
      const newest = index === buckets.length - 1;
      const x = newest ? width - right : left + (offset + index + 0.5) * slot;
      const label = svg("text", { x, y: height - 6, "text-anchor": newest ? "end" : "middle", class: "axis" });
      label.textContent = clock(buckets[index].end);
      chart.append(label);
    }
    if (totals.every((total) => total === 0)) {
      const none = svg("text", { x: left + plotWidth / 2, y: top + plotHeight / 2, "text-anchor": "middle", class: "none" });
      none.textContent = "no traffic in the last " + Math.round((BUCKETS - 1) * interval / 60) + " minutes";
      chart.append(none);
    }
  }

  function render(data) {
    const routeNames = data.routes.map((row) => row.route);
    const routeColor = (route) => ROUTE_PALETTE[Math.max(0, routeNames.indexOf(route)) % ROUTE_PALETTE.length];
    const reasonNames = data.reasons.map((row) => row.reason);
    const reasonColor = (reason) => REASON_COLORS[reasonClass(reason)];

    const requests = data.routes.reduce((sum, row) => sum + row.requests, 0);
    const denials = data.reasons.reduce((sum, row) => sum + row.denied, 0);
    $("total-requests").textContent = number.format(requests);
    $("total-denials").textContent = number.format(denials);
    $("denial-rate").textContent = requests === 0 ? "–" : (100 * denials / requests).toFixed(1) + " %";
    $("window").textContent = "last " + Math.round((BUCKETS - 1) * data.interval_seconds / 60) + " minutes";
    $("generation").textContent = String(data.generation);
    const lastReload = data.reloads[0];
    $("last-reload").textContent = lastReload
      ? "last reload " + (lastReload.ok ? "ok" : "failed") + " at " + clock(lastReload.time)
      : "no reload since start";

    const bars = data.interval_seconds + " s bars";
    $("interval-requests").textContent = bars;
    $("interval-denials").textContent = bars;
    stackedBars($("chart-requests"), data.buckets, routeNames, (bucket, route) => bucket.requests[route] || 0, routeColor, data.interval_seconds);
    stackedBars($("chart-denials"), data.buckets, reasonNames, (bucket, reason) => bucket.denied[reason] || 0, reasonColor, data.interval_seconds);
    legend("legend-requests", routeNames, routeColor);
    legend("legend-denials", reasonNames, reasonColor);

    fillTable("routes", data.routes, (row) => [
      cell(row.route, "mono"), cell(number.format(row.requests), "num"), cell(number.format(row.denied), "num"),
    ], "no requests yet");
    fillTable("reasons", data.reasons, (row) => [
      cell(badge(row.reason, reasonClass(row.reason))), cell(number.format(row.denied), "num"),
    ], "no denials");
    fillTable("origins", data.top_denied_origins, (row) => [
      cell(row.origin === "" ? "(none)" : row.origin, "mono"), cell(number.format(row.denied), "num"),
    ], "no denied origins");
    $("recent-hint").textContent = "newest first · the last " + data.recent_denials_capacity + " are kept";
    fillTable("recent", data.recent_denials.slice(0, 25), (row) => [
      cell(clock(row.time), "nowrap"), cell(badge(row.reason, reasonClass(row.reason))), cell(row.method, "mono"),
      cell(row.origin === "" ? "(none)" : row.origin, "mono"), cell(row.route, "mono"), cell(row.request_id, "mono"),
    ], "no denied decisions");
    fillTable("reloads", data.reloads, (row) => {
      const errors = el("ul", null, "errors");
      for (const line of row.errors) errors.append(el("li", line));
      return [
        cell(clock(row.time), "nowrap"), cell(row.trigger, "nowrap"), cell(badge(row.ok ? "ok" : "failed", row.ok ? "ok" : "failed")),
        cell(String(row.generation), "num"), cell(row.errors.length ? errors : "–"),
      ];
    }, "no reload since start (generation 1 is the configuration loaded at start)");

    $("report-only").hidden = data.report_only === null || data.report_only === undefined;
    const decided = (decision) => (decision.policy === null ? "(no policy)" : decision.policy) + ": " + decision.outcome;
    fillTable("report-only-table", (data.report_only || []).slice(0, 25), (row) => [
      cell(clock(row.time), "nowrap"), cell(badge(row.reason, reasonClass(row.reason))), cell(row.method, "mono"),
      cell(row.origin === "" ? "(none)" : row.origin, "mono"), cell(row.route, "mono"),
      cell(decided(row.enforced), "mono"), cell(decided(row.candidate), "mono"),
    ], "no differences");
    $("upstream-health").hidden = data.upstream_health === null || data.upstream_health === undefined;
  }

  function setStatus(live, text) {
    $("live").className = "dot " + (live ? "live" : "down");
    $("updated").textContent = text;
  }

  let polls = 0;
  async function poll() {
    const token = sessionStorage.getItem(TOKEN_KEY);
    const headers = token ? { Authorization: "Bearer " + token } : {};
    try {
      const response = await fetch(DATA, { headers, cache: "no-store" });
      if (response.status === 401) {
        $("token-form").hidden = false;
        setStatus(false, "token required");
        return;
      }
      if (!response.ok) throw new Error("HTTP " + response.status);
      const data = await response.json();
      render(data);
      $("token-form").hidden = true;
      $("error").hidden = true;
      polls += 1;
      document.body.dataset.polls = String(polls);
      setStatus(true, "updated " + clock(data.now));
    } catch (error) {
      $("error").textContent = "Cannot load " + DATA + ": " + error.message;
      $("error").hidden = false;
      setStatus(false, "disconnected");
    }
  }

  $("token-form").addEventListener("submit", (event) => {
    event.preventDefault();
    sessionStorage.setItem(TOKEN_KEY, $("token").value.trim());
    $("token").value = "";
    poll();
  });

  poll();
  setInterval(poll, POLL_MS);
})();
