// orderstream console: progressive enhancement. Every page is whole without this script; it adds the API token (kept
// in sessionStorage, sent as an Authorization header, never put in a URL), live refreshes, the order's event stream,
// the order actions (sent to the HTTP API) and the charts.
(function () {
  "use strict";

  const TOKEN_KEY = "orderstream.console.token";
  const body = document.body;
  const tokenRequired = body.dataset.tokenRequired === "true";

  // ---- small helpers -------------------------------------------------------------------------------------------
  function token() { return sessionStorage.getItem(TOKEN_KEY); }
  function authHeaders() { const t = token(); return t ? { Authorization: "Bearer " + t } : {}; }
  function announce(text) {
    const el = document.getElementById("announcer");
    if (!el) return;
    el.textContent = "";
    window.setTimeout(() => { el.textContent = text; }, 50);
  }
  function pageData() { return document.getElementById("page-data"); }
  function liveOn() { const t = document.getElementById("live-toggle"); return !t || t.checked; }

  // ---- the API token -------------------------------------------------------------------------------------------
  function askToken(message) {
    const dialog = document.getElementById("token-dialog");
    if (!dialog) return;
    const error = document.getElementById("token-error");
    if (message) { error.textContent = message; error.hidden = false; } else { error.hidden = true; }
    if (!dialog.open) dialog.showModal();
    document.getElementById("token-input").focus();
  }
  function setupToken() {
    const form = document.getElementById("token-form");
    if (form) {
      form.addEventListener("submit", () => {
        const value = document.getElementById("token-input").value.trim();
        if (!value) return;
        sessionStorage.setItem(TOKEN_KEY, value);
        document.getElementById("token-input").value = "";
        ready();
      });
    }
    const forget = document.getElementById("forget-token");
    if (forget) forget.addEventListener("click", () => { sessionStorage.removeItem(TOKEN_KEY); window.location.reload(); });
  }
  document.addEventListener("htmx:configRequest", (event) => {
    const t = token();
    if (t) event.detail.headers.Authorization = "Bearer " + t;
  });
  document.addEventListener("htmx:responseError", (event) => {
    const status = event.detail.xhr.status;
    if (status === 401) { sessionStorage.removeItem(TOKEN_KEY); askToken("That token was refused: enter it again."); return; }
    announce("The console could not load this part of the page (HTTP " + status + ").");
  });
  document.addEventListener("htmx:sendError", () => announce("The console's server did not answer."));

  // The page's data: loaded inline, or (with a token, which a navigation cannot carry) fetched now.
  function refresh(query) {
    const data = pageData();
    if (!data || !window.htmx || data.getAttribute("aria-busy") === "true") return Promise.resolve();
    data.setAttribute("aria-busy", "true");
    let url = data.dataset.url;
    if (query) url += (url.includes("?") ? "&" : "?") + new URLSearchParams(query).toString();
    return htmx.ajax("GET", url, { target: "#page-data", swap: "outerHTML" })
      .finally(() => { const d = pageData(); if (d) d.setAttribute("aria-busy", "false"); });
  }
  function ready() {
    if (document.getElementById("needs-token")) {  // the page came without its data: fetch it with the token
      if (!token()) { askToken(); return; }
      refresh().then(() => { if (!document.getElementById("needs-token")) startPage(); });
      return;
    }
    if (document.getElementById("deferred")) {  // the page came before its data (broker round trips): fetch it
      refresh().then(startPage);
      return;
    }
    startPage();
  }

  // ---- live refresh (pipeline) ---------------------------------------------------------------------------------
  function startRefreshing() {
    const data = pageData();
    const every = data && Number(data.dataset.refreshMs);
    if (!every) return;
    const state = document.getElementById("live-state");
    window.setInterval(() => {
      if (!liveOn() || document.hidden) { if (state) { state.textContent = "paused"; state.classList.remove("on"); } return; }
      if (state) { state.textContent = "live"; state.classList.add("on"); }
      refresh();
    }, every);
  }

  // ---- one order: its event stream, read with fetch so the token can go in a header -----------------------------
  function followOrder() {
    const live = document.getElementById("order-live");
    if (!live) return;
    const state = document.getElementById("live-state");
    const toggle = document.getElementById("live-toggle");
    let controller = null;
    let lastId = null;
    let pending = null;
    let lastStatus = currentOrder().status;

    function show(text, on) { state.textContent = text; state.classList.toggle("on", !!on); }
    let refreshing = false;
    function scheduleRefresh() {
      if (!pending) pending = window.setTimeout(refreshNow, 250);
    }
    function refreshNow() {
      pending = null;
      if (refreshing) { scheduleRefresh(); return; }
      refreshing = true;
      const upTo = lastId;
      const known = new Set([...document.querySelectorAll("#timeline li")].map((li) => li.dataset.version));
      // after: the page waits until the order view has applied the event that triggered this refresh
      refresh(upTo ? { after: upTo } : null).then(() => {
        document.querySelectorAll("#timeline li").forEach((li) => { if (known.size && !known.has(li.dataset.version)) li.classList.add("new"); });
        const now = currentOrder().status;
        if (now && now !== lastStatus) { announce("Order status is now " + now); lastStatus = now; }
        updateActions();
      }).finally(() => {
        refreshing = false;
        if (lastId !== upTo) scheduleRefresh();  // events arrived meanwhile
      });
    }
    async function run(signal) {
      while (!signal.aborted) {
        try {
          const headers = Object.assign({ Accept: "text/event-stream" }, authHeaders());
          if (lastId) headers["Last-Event-ID"] = lastId;
          const response = await fetch(live.dataset.eventsUrl, { headers, signal, cache: "no-store" });
          if (response.status === 401) { show("needs the token"); askToken("That token was refused: enter it again."); return; }
          if (!response.ok || !response.body) throw new Error("HTTP " + response.status);
          show("live", true);
          const reader = response.body.pipeThrough(new TextDecoderStream()).getReader();
          let buffer = "";
          for (;;) {
            const { value, done } = await reader.read();
            if (done) break;
            buffer += value.replace(/\r\n?/g, "\n");
            let cut;
            while ((cut = buffer.indexOf("\n\n")) >= 0) {
              const block = buffer.slice(0, cut);
              buffer = buffer.slice(cut + 2);
              let isEvent = false;
              for (const line of block.split("\n")) {
                if (line.startsWith(":")) continue;  // a comment (keep-alive)
                const [field, ...rest] = line.split(":");
                const value = rest.join(":").replace(/^ /, "");
                if (field === "id") lastId = value;
                if (field === "data" || field === "event") isEvent = true;
              }
              if (isEvent) scheduleRefresh();
            }
          }
        } catch (error) {
          if (signal.aborted) return;
        }
        show("reconnecting…");
        await new Promise((resolve) => window.setTimeout(resolve, 2000));
      }
    }
    function start() { controller = new AbortController(); run(controller.signal); }
    function stop() { if (controller) controller.abort(); controller = null; show("paused: this page no longer follows the order"); }
    toggle.addEventListener("change", () => { if (toggle.checked) { start(); scheduleRefresh(); } else { stop(); } });
    start();
  }

  function currentOrder() {
    const el = document.getElementById("order-state");
    if (!el) return {};
    return {
      status: el.dataset.status, version: el.dataset.version,
      canCancel: el.dataset.canCancel === "true", canShip: el.dataset.canShip === "true", canDeliver: el.dataset.canDeliver === "true",
    };
  }
  function updateActions() {
    const order = currentOrder();
    const buttons = { "cancel-button": order.canCancel, "ship-button": order.canShip, "deliver-button": order.canDeliver };
    for (const [id, enabled] of Object.entries(buttons)) {
      const button = document.getElementById(id);
      if (button) button.disabled = !enabled;
    }
  }

  // ---- the order's actions, sent to the HTTP API ---------------------------------------------------------------
  async function problemText(response) {
    try {
      const problem = await response.json();
      return problem.detail || problem.title || ("HTTP " + response.status);
    } catch (error) {
      return "HTTP " + response.status;
    }
  }
  function report(kind, text) {
    const out = document.getElementById("action-result");
    out.innerHTML = "";
    const p = document.createElement("p");
    p.className = kind === "ok" ? "notice" : "problem";
    if (kind !== "ok") p.setAttribute("role", "alert");
    p.id = "action-message";
    p.dataset.outcome = kind;
    p.textContent = text;
    if (kind === "conflict") {
      const reload = document.createElement("a");
      reload.href = window.location.pathname;
      reload.textContent = "Reload the order";
      reload.id = "reload-order";
      p.append(" ", reload);
    }
    out.appendChild(p);
  }
  function setupActions() {
    document.addEventListener("submit", async (event) => {
      const form = event.target.closest("form[data-api-action]");
      if (!form) return;
      event.preventDefault();
      const live = document.getElementById("order-live");
      const action = form.dataset.apiAction;
      const order = currentOrder();
      const headers = Object.assign({ "Content-Type": "application/json", Accept: "application/json" }, authHeaders());
      const payload = {};
      if (action === "cancel") {
        headers["If-Match"] = '"' + order.version + '"';  // the version this page shows: a stale page gets 412
        const reason = form.elements.reason.value.trim();
        if (reason) payload.reason = reason;
      }
      if (action === "ship" && form.elements.carrier.value.trim()) payload.carrier = form.elements.carrier.value.trim();
      const button = form.querySelector("button");
      button.disabled = true;
      report("ok", "Sending " + action + "…");
      let response;
      try {
        response = await fetch("/orders/" + encodeURIComponent(live.dataset.orderId) + "/" + action,
          { method: "POST", headers, body: JSON.stringify(payload) });
      } catch (error) {
        report("error", "The API did not answer; nothing was sent. Try again.");
        updateActions();
        return;
      }
      if (response.ok) {
        report("ok", { cancel: "Cancelled.", ship: "Shipped.", deliver: "Delivered." }[action] + " The timeline shows it as the pipeline applies it.");
        if (!liveOn()) refresh().then(updateActions);
      } else if (response.status === 412) {
        report("conflict", "Conflict: this page shows version " + order.version + " of the order, but it has changed since ("
          + await problemText(response) + "). Nothing was cancelled: reload the order, check what changed, then decide again.");
      } else if (response.status === 409) {
        report("refused", "Refused: " + await problemText(response));
      } else if (response.status === 401) {
        sessionStorage.removeItem(TOKEN_KEY);
        askToken("That token was refused: enter it again, then repeat the action.");
        report("error", "Not sent: the API needs a valid token.");
      } else {
        report("error", "Failed (HTTP " + response.status + "): " + await problemText(response));
      }
      updateActions();
    });
  }

  // ---- charts --------------------------------------------------------------------------------------------------
  const charts = new Map();
  function chartWidth(el) { return Math.max(240, Math.floor(el.getBoundingClientRect().width) - 4); }
  function makeChart(el, opts, data) {
    const old = charts.get(el);
    if (old) { old.setData(data); return old; }
    const chart = new uPlot(Object.assign({ width: chartWidth(el), height: 180 }, opts), data, el);
    charts.set(el, chart);
    return chart;
  }
  window.addEventListener("resize", () => { for (const [el, chart] of charts) chart.setSize({ width: chartWidth(el), height: 180 }); });
  const PALETTE = ["#0969da", "#1a7f37", "#bf8700", "#8250df", "#cf222e", "#57606a"];

  // Pipeline: events applied per second per view, from the positions each refresh shows.
  const samples = new Map();  // view -> [{t, total}]
  const rates = new Map();    // view -> [[t...], [rate...]]
  const WINDOW_S = 600;     // rates kept
  const CHART_SPAN_S = 300; // rates shown: the last five minutes
  function samplePipeline() {
    const rows = document.querySelectorAll('#pipeline-table tbody tr[data-kind="projection"]');
    if (!rows.length) return;
    const totals = new Map();
    rows.forEach((row) => {
      const position = row.dataset.position === "" ? 0 : Number(row.dataset.position);
      totals.set(row.dataset.consumer, (totals.get(row.dataset.consumer) || 0) + position);
    });
    const t = Date.now() / 1000;
    for (const [view, total] of totals) {
      const list = samples.get(view) || [];
      const last = list[list.length - 1];
      if (last && t - last.t < 1) continue;  // the same refresh seen twice
      list.push({ t, total });
      samples.set(view, list.slice(-2));
      const series = rates.get(view) || [[], []];
      if (last && t > last.t) {
        series[0].push(t);
        series[1].push(Math.max(0, (total - last.total) / (t - last.t)));
        while (series[0].length && series[0][0] < t - WINDOW_S) { series[0].shift(); series[1].shift(); }
      }
      rates.set(view, series);
    }
    drawRates();
  }
  // From when the page started sampling (at least the last minute), up to the last five minutes.
  function chartSpan(times) {
    const now = Date.now() / 1000;
    const first = times.length ? times[0] : now;
    return [Math.max(now - CHART_SPAN_S, Math.min(first, now - 60)), now];
  }
  function drawRates() {
    if (!window.uPlot) return;
    document.querySelectorAll("figure.chart[data-view]").forEach((figure, i) => {
      const view = figure.dataset.view;
      const series = rates.get(view) || [[], []];
      const now = figure.querySelector(".rate-now");
      if (series[1].length) now.textContent = series[1][series[1].length - 1].toFixed(1);
      makeChart(figure.querySelector(".chart-canvas"), {
        legend: { show: false },
        scales: {
          x: { time: true, range: () => chartSpan((rates.get(view) || [[]])[0]) },
          y: { range: (u, min, max) => [0, Math.max(5, (max || 0) * 1.2)] },
        },
        axes: [{}, { size: 50 }],
        series: [{}, { label: "events/s", stroke: PALETTE[i % PALETTE.length], width: 2, fill: PALETTE[i % PALETTE.length] + "22" }],
      }, series);
    });
  }

  // Sales: revenue per day (by currency) and per SKU (the top 15, by currency).
  function drawSales() {
    const source = document.getElementById("sales-chart-data");
    if (!source || !window.uPlot) return;
    const data = JSON.parse(source.textContent);
    const currencies = [...new Set([...data.by_day, ...data.by_sku].map((r) => r.currency))].sort();
    const major = (r) => r.revenue_minor / Math.pow(10, data.decimals[r.currency] ?? 2);
    const bars = uPlot.paths.bars({ size: [0.6, 60] });
    const dayEl = document.getElementById("chart-by-day");
    if (dayEl) {
      const days = [...new Set(data.by_day.map((r) => r.day))].sort();
      const xs = days.map((d) => Date.parse(d + "T00:00:00Z") / 1000);
      const DAY = 86400;
      const ys = currencies.map((c) => days.map((d) => { const r = data.by_day.find((x) => x.day === d && x.currency === c); return r ? major(r) : null; }));
      charts.delete(dayEl); dayEl.innerHTML = "";
      makeChart(dayEl, {
        legend: { live: false },
        scales: {
          x: { time: true, range: (u, min, max) => (xs.length ? [xs[0] - DAY * 0.75, xs[xs.length - 1] + DAY * 0.75] : [min, max]) },
          y: { range: (u, min, max) => [0, (max || 1) * 1.15] },
        },
        axes: [{ splits: () => xs, values: (u, splits) => splits.map((t) => new Date(t * 1000).toISOString().slice(5, 10)) }, { size: 70 }],
        series: [{}, ...currencies.map((c, i) => ({ label: c, stroke: PALETTE[i % PALETTE.length], fill: PALETTE[i % PALETTE.length] + "99", paths: bars, points: { show: false } }))],
      }, [xs, ...ys]);
    }
    const skuEl = document.getElementById("chart-by-sku");
    if (skuEl) {
      const top = data.by_sku;  // the top SKUs by revenue, largest first
      const skus = [...new Set(top.map((r) => r.sku))];
      const xs = skus.map((_, i) => i);
      const ys = currencies.map((c) => skus.map((s) => { const r = top.find((x) => x.sku === s && x.currency === c); return r ? major(r) : null; }));
      charts.delete(skuEl); skuEl.innerHTML = "";
      makeChart(skuEl, {
        legend: { live: false },
        padding: [8, 24, 0, 0],
        scales: { x: { time: false, range: (u, min, max) => [min - 0.5, max + 0.5] }, y: { range: (u, min, max) => [0, (max || 1) * 1.15] } },
        axes: [{ values: (u, splits) => splits.map((i) => skus[i] ?? ""), rotate: -35, size: 72, splits: () => xs }, { size: 70 }],
        series: [{ label: "SKU", value: (u, i) => skus[i] ?? "" }, ...currencies.map((c, i) => ({ label: c, stroke: PALETTE[i % PALETTE.length], fill: PALETTE[i % PALETTE.length] + "99", paths: bars, points: { show: false } }))],
      }, [xs, ...ys]);
    }
  }

  // ---- start ---------------------------------------------------------------------------------------------------
  let started = false;
  function startPage() {
    if (started) return;
    started = true;
    const page = body.dataset.page;
    if (page === "pipeline") { samplePipeline(); startRefreshing(); }
    if (page === "sales") drawSales();
    if (page === "order") { updateActions(); followOrder(); }
  }
  document.addEventListener("htmx:afterSettle", (event) => {
    if (event.detail.target && event.detail.target.id !== "page-data" && !event.detail.elt.closest("#page-data")) return;
    const page = body.dataset.page;
    if (page === "pipeline") samplePipeline();
    if (page === "sales") drawSales();
    if (page === "order") updateActions();
  });
  document.addEventListener("DOMContentLoaded", () => {
    setupToken();
    setupActions();
    ready();
  });
})();
