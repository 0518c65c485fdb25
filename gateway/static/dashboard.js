/*
 * The gateway's dashboard: plain JavaScript, no build step, nothing fetched from elsewhere.
 *
 * Market data comes from /ws/md?symbol=S: a snapshot, then deltas and trades, each carrying the symbol's next
 * seq. A message whose seq is not the next one (or a heartbeat naming a later seq) is a gap: the page asks for a
 * fresh snapshot ({"op": "snapshot"}) and ignores deltas until it comes. The account's side comes from
 * /ws/fills/{account}?api_key=KEY (acks, fills, cancels, rejects) plus REST reads (GET /orders, /fills,
 * /risk) after each event, so what is shown is always what the gateway holds. Rendering is batched into one
 * animation frame; every text goes in through textContent, never as HTML.
 */
(() => {
  "use strict";

  const LADDER_LEVELS = 14; // levels shown per side
  const TAPE_ROWS = 60;
  const FILL_ROWS = 200;
  const CHART_WINDOW_MS = 5 * 60 * 1000; // the chart's time span
  const CHART_MAX_POINTS = 4000;
  const RISK_POLL_MS = 2000; // unrealised PnL moves with the mid: refresh it this often
  const KEY_STORE = "proptrade.apiKey";

  const $ = (id) => document.getElementById(id);
  const state = {
    auth: true,
    symbols: [],
    symbol: null,
    book: { bids: new Map(), asks: new Map() }, // price -> [size, orders]
    seq: null,
    awaitingSnapshot: true,
    top: { mid: null, best_bid: null, best_ask: null, spread: null },
    decimals: 2,
    sizeDecimals: 0,
    points: [], // [ms, mid]
    tradeMarks: [], // [ms, price, side]
    key: "",
    account: null,
    orders: [],
    fills: [],
    fillSeqs: new Set(),
    side: "buy",
    type: "limit",
    md: null,
    fillsWs: null,
    dirty: { ladder: true, chart: true, account: true },
  };

  // --- small helpers ----------------------------------------------------------------------------------------

  function el(tag, props = {}, ...children) {
    const node = document.createElement(tag);
    for (const [name, value] of Object.entries(props)) {
      if (name === "class") node.className = value;
      else if (name === "text") node.textContent = value;
      else if (name.startsWith("data-")) node.setAttribute(name, value);
      else node[name] = value;
    }
    for (const child of children) node.append(child);
    return node;
  }

  function decimalsOf(x) {
    const text = String(x);
    const dot = text.indexOf(".");
    return dot < 0 ? 0 : Math.min(8, text.length - dot - 1);
  }

  const fmtPrice = (x) => (x == null ? "–" : Number(x).toFixed(state.decimals));
  const fmtSize = (x) => (x == null ? "–" : Number(x).toFixed(state.sizeDecimals));
  const fmtMoney = (x) => (x == null ? "–" : (x > 0 ? "+" : "") + Number(x).toFixed(2));

  function fmtTime(seconds) {
    const d = new Date(seconds * 1000);
    const pad = (n, w = 2) => String(n).padStart(w, "0");
    return `${pad(d.getHours())}:${pad(d.getMinutes())}:${pad(d.getSeconds())}.${pad(d.getMilliseconds(), 3)}`;
  }

  function log(text) {
    $("log").textContent = `${new Date().toLocaleTimeString()}  ${text}`;
  }

  function noteDecimals(price, size) {
    if (price != null) state.decimals = Math.max(state.decimals, decimalsOf(price));
    if (size != null) state.sizeDecimals = Math.max(state.sizeDecimals, decimalsOf(size));
  }

  function setLink(id, up) {
    const node = $(id);
    node.classList.toggle("up", up === true);
    node.classList.toggle("down", up === false);
  }

  function wsUrl(path) {
    return `${location.protocol === "https:" ? "wss:" : "ws:"}//${location.host}${path}`;
  }

  async function api(method, path, body) {
    const headers = {};
    if (state.key) headers["X-API-Key"] = state.key;
    if (body !== undefined) headers["Content-Type"] = "application/json";
    const response = await fetch(path, {
      method,
      headers,
      body: body === undefined ? undefined : JSON.stringify(body),
    });
    let data = null;
    try {
      data = await response.json();
    } catch (e) {
      data = null;
    }
    if (!response.ok) {
      const what = data && data.code ? `${data.code}: ${data.message}` : `HTTP ${response.status}`;
      const error = new Error(what);
      error.status = response.status;
      throw error;
    }
    return data;
  }

  let frameQueued = false;
  function invalidate(part) {
    state.dirty[part] = true;
    if (!frameQueued) {
      frameQueued = true;
      requestAnimationFrame(render);
    }
  }

  // --- market data ------------------------------------------------------------------------------------------

  function setTop(message) {
    state.top = { mid: message.mid, best_bid: message.best_bid, best_ask: message.best_ask, spread: message.spread };
    if (message.mid != null) addPoint(Date.now(), message.mid);
  }

  function addPoint(ms, mid) {
    const points = state.points;
    const last = points[points.length - 1];
    if (last && last[1] === mid && ms - last[0] < 1000) return;
    points.push([ms, mid]);
    if (points.length > CHART_MAX_POINTS) points.splice(0, points.length - CHART_MAX_POINTS);
    invalidate("chart");
  }

  function loadSnapshot(message) {
    const book = { bids: new Map(), asks: new Map() };
    for (const [side, levels] of [["bids", message.bids], ["asks", message.asks]]) {
      for (const [price, size, orders] of levels) {
        noteDecimals(price, size);
        book[side].set(price, [size, orders]);
      }
    }
    state.book = book;
    state.seq = message.seq;
    state.awaitingSnapshot = false;
    setTop(message);
    $("book-seq").textContent = `seq ${message.seq}`;
    invalidate("ladder");
  }

  function askSnapshot(why) {
    if (state.awaitingSnapshot) return;
    state.awaitingSnapshot = true;
    log(`market data: ${why}; asking for a snapshot`);
    if (state.md && state.md.readyState === WebSocket.OPEN) state.md.send(JSON.stringify({ op: "snapshot" }));
  }

  function onMarketData(message) {
    if (message.symbol !== undefined && message.symbol !== state.symbol) return;
    switch (message.type) {
      case "snapshot":
        loadSnapshot(message);
        return;
      case "heartbeat": {
        const seq = message.seqs ? message.seqs[state.symbol] : undefined;
        if (seq !== undefined && state.seq !== null && seq > state.seq) askSnapshot(`heartbeat at seq ${seq}`);
        return;
      }
      case "delta":
      case "trade":
        break;
      default:
        return;
    }
    if (state.awaitingSnapshot) return;
    if (message.seq !== state.seq + 1) {
      askSnapshot(`gap: seq ${message.seq} after ${state.seq}`);
      return;
    }
    state.seq = message.seq;
    $("book-seq").textContent = `seq ${message.seq}`;
    noteDecimals(message.price, message.size);
    if (message.type === "delta") {
      const levels = message.side === "buy" ? state.book.bids : state.book.asks;
      if (message.size > 0) levels.set(message.price, [message.size, message.orders]);
      else levels.delete(message.price);
      state.flash = `${message.side}:${message.price}`;
      setTop(message);
      invalidate("ladder");
    } else {
      addTrade(message);
    }
  }

  function addTrade(message) {
    const body = $("tape").tBodies[0];
    const row = el("tr", { class: "new" },
      el("td", { text: fmtTime(message.timestamp) }),
      el("td", { class: message.side || "", text: message.side || "" }),
      el("td", { class: `num ${message.side || ""}`, text: fmtPrice(message.price) }),
      el("td", { class: "num", text: fmtSize(message.size) }));
    body.prepend(row);
    while (body.rows.length > TAPE_ROWS) body.deleteRow(-1);
    state.tradeMarks.push([Date.now(), message.price, message.side]);
    if (state.tradeMarks.length > 500) state.tradeMarks.shift();
    invalidate("chart");
  }

  let mdRetryMs = 500;
  function connectMarketData() {
    if (state.md) {
      state.md.onclose = null;
      state.md.close();
    }
    if (!state.symbol) return;
    state.awaitingSnapshot = true;
    const ws = new WebSocket(wsUrl(`/ws/md?symbol=${encodeURIComponent(state.symbol)}`));
    state.md = ws;
    ws.onopen = () => {
      mdRetryMs = 500;
      setLink("md-status", true);
    };
    ws.onmessage = (event) => onMarketData(JSON.parse(event.data));
    ws.onclose = (event) => {
      setLink("md-status", false);
      if (state.md !== ws) return;
      log(`market data closed (${event.code}); reconnecting`);
      setTimeout(connectMarketData, mdRetryMs);
      mdRetryMs = Math.min(mdRetryMs * 2, 10000);
    };
  }

  // --- rendering --------------------------------------------------------------------------------------------

  function render() {
    frameQueued = false;
    const dirty = state.dirty;
    state.dirty = { ladder: false, chart: false, account: false };
    if (dirty.account) {
      renderAccount();
      dirty.ladder = true; // its "mine" column
    }
    if (dirty.ladder) renderLadder();
    if (dirty.chart) renderChart();
  }

  function mineAt() {
    const mine = new Map(); // "buy:price" -> open size
    for (const order of state.orders) {
      if (order.symbol !== state.symbol || order.price == null) continue;
      const key = `${order.side}:${order.price}`;
      mine.set(key, (mine.get(key) || 0) + order.leaves);
    }
    return mine;
  }

  function levelRow(side, price, size, orders, maxSize, mine) {
    const own = mine.get(`${side}:${price}`);
    const row = el("div", { class: "level", role: "row", "data-side": side, "data-price": String(price) },
      el("span", { class: "bar-fill" }),
      el("span", { text: String(orders) }),
      el("span", { class: "size", text: fmtSize(size) }),
      el("span", { class: "price", text: fmtPrice(price) }),
      el("span", { class: "mine", text: own ? fmtSize(own) : "" }));
    row.querySelector(".bar-fill").style.width = `${Math.max(2, (100 * size) / maxSize)}%`;
    if (state.flash === `${side}:${price}`) row.classList.add("flash");
    row.addEventListener("click", () => {
      selectType("limit");
      $("ticket-price").value = fmtPrice(price);
    });
    return row;
  }

  function renderLadder() {
    const asks = [...state.book.asks.entries()].sort((a, b) => a[0] - b[0]).slice(0, LADDER_LEVELS).reverse();
    const bids = [...state.book.bids.entries()].sort((a, b) => b[0] - a[0]).slice(0, LADDER_LEVELS);
    const maxSize = Math.max(1e-12, ...asks.map((l) => l[1][0]), ...bids.map((l) => l[1][0]));
    const mine = mineAt();
    $("asks").replaceChildren(...asks.map(([p, [s, n]]) => levelRow("sell", p, s, n, maxSize, mine)));
    $("bids").replaceChildren(...bids.map(([p, [s, n]]) => levelRow("buy", p, s, n, maxSize, mine)));
    state.flash = null;
    const top = state.top;
    $("spread-row").textContent = top.spread == null ? "one-sided or empty book"
      : `spread ${fmtPrice(top.spread)}  ·  mid ${top.mid.toFixed(state.decimals + 1)}`;
    $("top-bid").textContent = fmtPrice(top.best_bid);
    $("top-ask").textContent = fmtPrice(top.best_ask);
    $("top-mid").textContent = top.mid == null ? "–" : top.mid.toFixed(state.decimals + 1);
    $("top-spread").textContent = fmtPrice(top.spread);
  }

  function renderChart() {
    const canvas = $("chart");
    const ratio = window.devicePixelRatio || 1;
    const width = canvas.clientWidth;
    const height = canvas.clientHeight;
    if (!width || !height) return;
    if (canvas.width !== Math.round(width * ratio) || canvas.height !== Math.round(height * ratio)) {
      canvas.width = Math.round(width * ratio);
      canvas.height = Math.round(height * ratio);
    }
    const ctx = canvas.getContext("2d");
    ctx.setTransform(ratio, 0, 0, ratio, 0, 0);
    ctx.clearRect(0, 0, width, height);
    const styles = getComputedStyle(document.documentElement);
    const color = (name) => styles.getPropertyValue(name).trim();
    const now = Date.now();
    const from = now - CHART_WINDOW_MS;
    const points = state.points.filter((p) => p[0] >= from);
    const before = state.points.filter((p) => p[0] < from).pop();
    if (before) points.unshift([from, before[1]]);
    ctx.font = "11px ui-monospace, 'DejaVu Sans Mono', monospace";
    if (!points.length) {
      ctx.fillStyle = color("--muted");
      ctx.textAlign = "center";
      ctx.fillText("waiting for a two-sided book", width / 2, height / 2);
      $("chart-range").textContent = "";
      return;
    }
    const marks = state.tradeMarks.filter((m) => m[0] >= points[0][0]);
    let lo = Math.min(...points.map((p) => p[1]), ...marks.map((m) => m[1]));
    let hi = Math.max(...points.map((p) => p[1]), ...marks.map((m) => m[1]));
    const pad = Math.max((hi - lo) * 0.12, Math.pow(10, -state.decimals) * 2);
    lo -= pad;
    hi += pad;
    const left = 8;
    const right = width - 64;
    const top = 8;
    const bottom = height - 20;
    const t0 = points[0][0];
    const span = Math.max(now - t0, 1000); // the history so far, up to the window, left edge to now
    const x = (t) => left + ((t - t0) / span) * (right - left);
    const y = (v) => bottom - ((v - lo) / (hi - lo)) * (bottom - top);

    ctx.strokeStyle = color("--line");
    ctx.fillStyle = color("--muted");
    ctx.lineWidth = 1;
    ctx.textAlign = "left";
    for (let i = 0; i <= 4; i++) {
      const v = lo + ((hi - lo) * i) / 4;
      const yy = Math.round(y(v)) + 0.5;
      ctx.beginPath();
      ctx.moveTo(left, yy);
      ctx.lineTo(right, yy);
      ctx.stroke();
      ctx.fillText(v.toFixed(state.decimals + 1), right + 6, yy + 4);
    }
    const ticks = span < 8000 ? [0, 4] : [0, 1, 2, 3, 4]; // no repeated second labels on a short history
    for (const i of ticks) {
      const t = t0 + (span * i) / 4;
      ctx.textAlign = i === 0 ? "left" : i === 4 ? "right" : "center";
      ctx.fillText(new Date(t).toLocaleTimeString([], { hour12: false }), x(t), height - 5);
    }

    // the mid as a step line (it holds until the next change), extended to now
    ctx.beginPath();
    ctx.moveTo(x(points[0][0]), y(points[0][1]));
    for (let i = 1; i < points.length; i++) {
      ctx.lineTo(x(points[i][0]), y(points[i - 1][1]));
      ctx.lineTo(x(points[i][0]), y(points[i][1]));
    }
    const lastMid = points[points.length - 1][1];
    ctx.lineTo(x(now), y(lastMid));
    const accent = color("--accent");
    ctx.strokeStyle = accent;
    ctx.lineWidth = 1.6;
    ctx.stroke();
    ctx.lineTo(x(now), bottom);
    ctx.lineTo(x(points[0][0]), bottom);
    ctx.closePath();
    const gradient = ctx.createLinearGradient(0, top, 0, bottom);
    gradient.addColorStop(0, "rgba(90, 169, 255, 0.25)");
    gradient.addColorStop(1, "rgba(90, 169, 255, 0)");
    ctx.fillStyle = gradient;
    ctx.fill();

    for (const [t, price, side] of marks) {
      ctx.beginPath();
      ctx.arc(x(t), y(price), 3, 0, 2 * Math.PI);
      ctx.fillStyle = side === "buy" ? color("--bid") : color("--ask");
      ctx.fill();
    }

    const yy = y(lastMid);
    ctx.fillStyle = accent;
    ctx.fillRect(right + 2, yy - 8, 62, 16);
    ctx.fillStyle = "#08110c";
    ctx.textAlign = "left";
    ctx.fillText(lastMid.toFixed(state.decimals + 1), right + 6, yy + 4);
    $("chart-range").textContent = `${points.length} points · last ${Math.round(span / 1000)} s`;
  }

  // --- the account ------------------------------------------------------------------------------------------

  function renderAccount() {
    const body = $("orders").tBodies[0];
    if (!state.account) {
      body.replaceChildren(el("tr", { class: "empty" }, el("td", { colSpan: 8, text: "no account connected" })));
    } else if (!state.orders.length) {
      body.replaceChildren(el("tr", { class: "empty" }, el("td", { colSpan: 8, text: "no open orders" })));
    } else {
      body.replaceChildren(...state.orders.map((order) => {
        const cancel = el("button", { type: "button", class: "cancel", text: "Cancel", "data-order": String(order.order_id) });
        cancel.addEventListener("click", () => cancelOrder(order.order_id, cancel));
        return el("tr", { "data-order": String(order.order_id) },
          el("td", { text: String(order.order_id) }),
          el("td", { text: order.symbol }),
          el("td", { class: order.side, text: order.side }),
          el("td", { class: "num", text: fmtPrice(order.price) }),
          el("td", { class: "num", text: fmtSize(order.size) }),
          el("td", { class: "num", text: fmtSize(order.leaves) }),
          el("td", { class: "num", text: fmtSize(order.filled) }),
          el("td", { class: "num" }, cancel));
      }));
    }
    $("cancel-all").disabled = !state.account || !state.orders.length;
    renderFills();
  }

  function renderFills() {
    const body = $("fills").tBodies[0];
    if (!state.fills.length) {
      body.replaceChildren(el("tr", { class: "empty" },
        el("td", { colSpan: 6, text: state.account ? "no fills yet" : "no account connected" })));
      return;
    }
    body.replaceChildren(...state.fills.slice(-FILL_ROWS).reverse().map((fill) =>
      el("tr", { "data-order": String(fill.order_id) },
        el("td", { text: fmtTime(fill.timestamp) }),
        el("td", { text: String(fill.order_id) }),
        el("td", { class: fill.side, text: fill.side }),
        el("td", { class: "num", text: fmtPrice(fill.price) }),
        el("td", { class: "num", text: fmtSize(fill.size) }),
        el("td", { text: fill.liquidity }))));
  }

  function renderRisk(risk) {
    const position = risk.positions.find((p) => p.symbol === state.symbol);
    const setValue = (id, text, signed) => {
      const node = $(id);
      node.textContent = text;
      node.classList.toggle("pos", signed > 0);
      node.classList.toggle("neg", signed < 0);
    };
    setValue("risk-position", position ? fmtSize(position.position) : "0", position ? position.position : 0);
    setValue("risk-avg", position && position.avg_cost != null ? fmtPrice(position.avg_cost) : "–", 0);
    setValue("risk-realised", position ? fmtMoney(position.realised) : "–", position ? position.realised : 0);
    setValue("risk-unrealised", position ? fmtMoney(position.unrealised) : "–", position ? position.unrealised : 0);
    setValue("risk-pnl", fmtMoney(risk.pnl), risk.pnl);
    setValue("risk-open", String(risk.open_orders), 0);
    $("risk-killed").classList.toggle("hidden", !risk.killed);
  }

  function addFill(fill) {
    if (state.fillSeqs.has(fill.seq)) return;
    state.fillSeqs.add(fill.seq);
    state.fills.push(fill);
    if (state.fills.length > FILL_ROWS * 2) state.fills.splice(0, state.fills.length - FILL_ROWS);
    noteDecimals(fill.price, fill.size);
  }

  let refreshTimer = null;
  let refreshing = false;
  function refreshAccountSoon() {
    if (refreshTimer === null) refreshTimer = setTimeout(refreshAccount, 30);
  }

  async function refreshAccount() {
    refreshTimer = null;
    if (!state.account) return;
    if (refreshing) {
      refreshAccountSoon();
      return;
    }
    refreshing = true;
    const account = encodeURIComponent(state.account);
    try {
      const [orders, risk] = await Promise.all([api("GET", `/orders/${account}`), api("GET", `/risk/${account}`)]);
      state.orders = orders;
      renderRisk(risk);
      invalidate("account");
    } catch (e) {
      log(`account: ${e.message}`);
    } finally {
      refreshing = false;
    }
  }

  async function loadFills() {
    const fills = await api("GET", `/fills/${encodeURIComponent(state.account)}?limit=${FILL_ROWS}`);
    for (const fill of fills) addFill(fill);
    state.fills.sort((a, b) => a.seq - b.seq);
    invalidate("account");
  }

  let fillsRetryMs = 500;
  function connectFills() {
    if (state.fillsWs) {
      state.fillsWs.onclose = null;
      state.fillsWs.close();
    }
    if (!state.account) return;
    const query = state.key ? `?api_key=${encodeURIComponent(state.key)}` : "";
    const ws = new WebSocket(wsUrl(`/ws/fills/${encodeURIComponent(state.account)}${query}`));
    state.fillsWs = ws;
    ws.onopen = () => {
      fillsRetryMs = 500;
      setLink("fills-status", true);
      refreshAccountSoon(); // whatever happened while it was down
    };
    ws.onmessage = (event) => {
      const message = JSON.parse(event.data);
      if (message.event === "heartbeat") return;
      if (message.event === "fill") {
        addFill(message);
        log(`fill: ${message.side} ${fmtSize(message.size)} @ ${fmtPrice(message.price)} (order ${message.order_id})`);
      } else if (message.event === "reject") {
        log(`reject: ${message.reason}`);
      }
      refreshAccountSoon();
    };
    ws.onclose = (event) => {
      setLink("fills-status", false);
      if (state.fillsWs !== ws) return;
      log(`account stream closed (${event.code}); reconnecting`);
      setTimeout(connectFills, fillsRetryMs);
      fillsRetryMs = Math.min(fillsRetryMs * 2, 10000);
    };
  }

  async function useKey(key) {
    state.key = key;
    const result = $("ticket-result");
    let who;
    try {
      who = await api("GET", "/whoami");
    } catch (e) {
      result.textContent = e.status === 401 ? "That API key is not known here." : e.message;
      result.className = "result bad";
      return;
    }
    if (key) sessionStorage.setItem(KEY_STORE, key);
    state.account = who.client_id || who.accounts[0] || null;
    state.orders = [];
    state.fills = [];
    state.fillSeqs = new Set();
    $("account-name").textContent = state.account ? state.account : "";
    $("ticket-submit").disabled = !state.account;
    result.textContent = state.account ? `Trading as ${state.account}.` : "This gateway has no account.";
    result.className = "result";
    if (!state.account) return;
    connectFills();
    await Promise.all([loadFills(), refreshAccount()]);
  }

  // --- the ticket -------------------------------------------------------------------------------------------

  function selectSide(side) {
    state.side = side;
    $("side-buy").classList.toggle("active", side === "buy");
    $("side-sell").classList.toggle("active", side === "sell");
    const submit = $("ticket-submit");
    submit.classList.toggle("buy", side === "buy");
    submit.classList.toggle("sell", side === "sell");
    submit.textContent = side === "buy" ? "Buy" : "Sell";
  }

  function selectType(type) {
    state.type = type;
    $("type-limit").classList.toggle("active", type === "limit");
    $("type-market").classList.toggle("active", type === "market");
    $("ticket-price").disabled = type === "market";
  }

  async function submitOrder(event) {
    event.preventDefault();
    const result = $("ticket-result");
    const size = Number($("ticket-size").value);
    const price = Number($("ticket-price").value);
    if (!(size > 0) || (state.type === "limit" && !(price > 0))) {
      result.textContent = state.type === "limit" ? "Give a positive price and size." : "Give a positive size.";
      result.className = "result bad";
      return;
    }
    const order = { client_id: state.account, symbol: state.symbol, side: state.side, type: state.type, size };
    if (state.type === "limit") order.price = price;
    const tif = $("ticket-tif").value;
    if (tif) order.time_in_force = tif;
    if ($("ticket-post-only").checked) order.post_only = true;
    const submit = $("ticket-submit");
    submit.disabled = true;
    try {
      const answer = await api("POST", "/order", order);
      if (answer.status === "accepted") {
        result.textContent = `Order ${answer.order_id} ${answer.state}: ${answer.side} ${fmtSize(answer.size)}` +
          (answer.price != null ? ` @ ${fmtPrice(answer.price)}` : "") + `, filled ${fmtSize(answer.filled)}`;
        result.className = "result ok";
        for (const fill of answer.fills) addFill(fill);
      } else {
        result.textContent = `Rejected: ${answer.reason}`;
        result.className = "result bad";
      }
      refreshAccountSoon();
    } catch (e) {
      result.textContent = e.message;
      result.className = "result bad";
    } finally {
      submit.disabled = !state.account;
    }
  }

  async function cancelOrder(orderId, button) {
    button.disabled = true;
    try {
      const answer = await api("POST", `/cancel/${orderId}`);
      log(answer.status === "cancelled" ? `order ${orderId} cancelled` : `cancel ${orderId}: ${answer.reason}`);
    } catch (e) {
      log(`cancel ${orderId}: ${e.message}`);
    }
    refreshAccountSoon();
  }

  async function cancelAll() {
    try {
      const answer = await api("DELETE", `/orders/${encodeURIComponent(state.account)}`);
      log(`cancelled ${answer.cancelled} orders`);
    } catch (e) {
      log(`cancel all: ${e.message}`);
    }
    refreshAccountSoon();
  }

  // --- start ------------------------------------------------------------------------------------------------

  async function start() {
    $("side-buy").addEventListener("click", () => selectSide("buy"));
    $("side-sell").addEventListener("click", () => selectSide("sell"));
    $("type-limit").addEventListener("click", () => selectType("limit"));
    $("type-market").addEventListener("click", () => selectType("market"));
    $("ticket").addEventListener("submit", submitOrder);
    $("cancel-all").addEventListener("click", cancelAll);
    $("key-form").addEventListener("submit", (event) => {
      event.preventDefault();
      useKey($("api-key").value.trim());
    });
    $("symbol").addEventListener("change", (event) => {
      state.symbol = event.target.value;
      state.points = [];
      state.tradeMarks = [];
      $("tape").tBodies[0].replaceChildren();
      connectMarketData();
      invalidate("account");
    });
    new ResizeObserver(() => invalidate("chart")).observe($("chart"));
    setInterval(() => invalidate("chart"), 1000); // the line runs on to now
    setInterval(() => {
      if (state.account) refreshAccountSoon();
    }, RISK_POLL_MS);
    invalidate("account");

    const health = await api("GET", "/health");
    state.auth = health.auth;
    state.symbols = health.symbols;
    $("symbol").replaceChildren(...health.symbols.map((s) => el("option", { value: s, text: s })));
    state.symbol = health.symbols[0] || null;
    connectMarketData();
    const stored = sessionStorage.getItem(KEY_STORE);
    if (!state.auth) {
      $("api-key").placeholder = "no key needed";
      await useKey("");
    } else if (stored) {
      $("api-key").value = stored;
      await useKey(stored);
    }
  }

  start().catch((e) => log(`start: ${e.message}`));
})();
