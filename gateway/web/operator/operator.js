// The operator's dashboard: reads GET /v1/operator/overview with the session cookie (the
// operator's SIWE sign-in on the wallet page) or the admin key typed here; renders tables.
const OVERVIEW = "/v1/operator/overview";
let adminKey = null;

const $ = (id) => document.getElementById(id);

function eth(wei) {
  // wei (decimal string) -> "0.000123 ETH", exact to 18 decimals, trailing zeros dropped
  const v = BigInt(wei);
  const whole = v / 10n ** 18n;
  const frac = (v % 10n ** 18n).toString().padStart(18, "0").replace(/0+$/, "");
  return `${whole}${frac ? "." + frac : ""} ETH`;
}

function cell(row, text, cls) {
  const td = document.createElement("td");
  td.textContent = String(text);
  if (cls) td.className = cls;
  row.appendChild(td);
}

function fill(id, items, cells) {
  const body = $(id);
  body.replaceChildren();
  for (const item of items) {
    const tr = document.createElement("tr");
    for (const [text, cls] of cells(item)) cell(tr, text, cls);
    body.appendChild(tr);
  }
  if (!items.length) {
    const tr = document.createElement("tr");
    cell(tr, "none", "muted");
    body.appendChild(tr);
  }
}

const when = (s) => new Date(s * 1000).toISOString().slice(0, 16).replace("T", " ") + " UTC";

const SVG = "http://www.w3.org/2000/svg";

function svg(parent, name, attrs, text) {
  const node = document.createElementNS(SVG, name);
  for (const [k, v] of Object.entries(attrs)) node.setAttribute(k, String(v));
  if (text !== undefined) node.textContent = text;
  parent.appendChild(node);
  return node;
}

// Bars: requests per recorded batch, placed by the time its block was mined; line: the revenue
// recorded so far (sum of the batches' totals), on its own scale. Oldest batch on the left.
function chart(batches) {
  const root = $("chart");
  root.replaceChildren();
  const W = 800, H = 220, L = 50, R = 110, T = 18, B = 30;
  const items = [...batches].sort((a, b) => a.recorded_at - b.recorded_at || a.batch_id - b.batch_id);
  if (!items.length) {
    svg(root, "text", { x: W / 2, y: H / 2, "text-anchor": "middle", fill: "#5b6470" }, "no batches recorded yet");
    return;
  }
  const t0 = items[0].recorded_at, t1 = items[items.length - 1].recorded_at;
  const span = Math.max(1, t1 - t0);
  const maxReq = Math.max(...items.map((b) => b.requests));
  let total = 0n;
  const cumulative = items.map((b) => (total += BigInt(b.total_wei)));
  const maxWei = Number(total) || 1;
  const bar = Math.max(3, Math.min(24, (W - L - R) / (2 * items.length)));
  const x = (t) => L + ((t - t0) / span) * (W - L - R - bar);
  svg(root, "line", { x1: L, y1: H - B, x2: W - R, y2: H - B, stroke: "#d8dde3" });
  svg(root, "text", { x: L - 6, y: T + 8, "text-anchor": "end", "font-size": 11, fill: "#5b6470" }, String(maxReq));
  svg(root, "text", { x: L - 6, y: H - B, "text-anchor": "end", "font-size": 11, fill: "#5b6470" }, "0");
  svg(root, "text", { x: L, y: T - 4, "font-size": 11, fill: "#2a5bd7" }, "requests");
  items.forEach((b) => {
    const h = ((H - B - T) * b.requests) / maxReq;
    const rect = svg(root, "rect", { class: "bar", x: x(b.recorded_at), y: H - B - h, width: bar, height: h, fill: "#2a5bd7" });
    svg(rect, "title", {}, `batch ${b.batch_id}: ${b.requests} requests, ${eth(b.total_wei)}`);
  });
  const points = items.map((b, i) => `${x(b.recorded_at) + bar / 2},${H - B - ((H - B - T) * Number(cumulative[i])) / maxWei}`);
  svg(root, "polyline", { id: "revenue-line", points: points.join(" "), fill: "none", stroke: "#1e7b34", "stroke-width": 2 });
  svg(root, "text", { id: "revenue-total", x: W - R + 8, y: T + 8, "font-size": 11, fill: "#1e7b34" }, eth(total.toString()));
  svg(root, "text", { x: L, y: H - 8, "font-size": 11, fill: "#5b6470" }, when(t0));
  if (t1 !== t0) svg(root, "text", { x: W - R, y: H - 8, "text-anchor": "end", "font-size": 11, fill: "#5b6470" }, when(t1));
}

// A small curve of a run's largest gradient entry per round, on a log scale (convergence at a glance).
function sparkline(td, history) {
  const W = 120, H = 28;
  const root = svg(td, "svg", { class: "spark", viewBox: `0 0 ${W} ${H}`, width: W, height: H, role: "img" });
  const logs = history.map((h) => Math.log10(Math.max(h.grad_max_abs, 1e-300)));
  if (!logs.length) return;
  const lo = Math.min(...logs), hi = Math.max(...logs), span = Math.max(hi - lo, 1e-9);
  const x = (i) => (logs.length === 1 ? W / 2 : 2 + (i * (W - 4)) / (logs.length - 1));
  const y = (v) => 2 + ((hi - v) * (H - 4)) / span;
  svg(root, "polyline", { points: logs.map((v, i) => `${x(i)},${y(v)}`).join(" "), fill: "none", stroke: "#2a5bd7", "stroke-width": 1.5 });
  svg(root, "title", {}, history.map((h) => `round ${h.round}: ${h.grad_max_abs.toExponential(2)}`).join("\n"));
}

function training(runs) {
  fill("training", runs, (r) => [
    [r.subnet_id, "num"], [r.version, "num"], [r.job_name], [r.rounds, "num"], [r.converged ? "yes" : "no"],
    [r.n_rows, "num"], [r.nodes.map((n) => `${n.operator_address.slice(0, 10)}… (${n.n_rows})`).join(", ")],
    [r.dropped_nodes.length ? r.dropped_nodes.join(", ") : "none"], [r.min_nodes ?? "", "num"], [""],
  ]);
  const rows = $("training").children;
  runs.forEach((r, i) => sparkline(rows[i].lastChild, r.history));
  const rounds = runs.flatMap((r) => r.history.map((h) => ({ r, h })));
  fill("rounds", rounds, ({ r, h }) => [
    [r.subnet_id, "num"], [r.version, "num"], [h.round, "num"], [h.loglik.toFixed(6), "num"],
    [h.grad_max_abs.toExponential(3), "num"],
  ]);
}

function audit(a) {
  $("audit-status").textContent = a.error || `${a.entries.length} newest entries of the signer's hash-chained log`;
  fill("audit", a.entries, (e) => [
    [e.seq, "num"], [e.ts ? when(e.ts) : ""], [e.caller || e.caller_claimed || ""], [e.event],
    [e.outcome || ""], [e.function || e.reason || ""], [e.tx_hash || "", "mono"],
  ]);
}

function render(o) {
  $("who").textContent = `Signed in: ${o.signed_in_as}`;
  $("operator").textContent = o.operator;
  $("node-count").textContent = o.nodes.length;
  $("subnet-count").textContent = o.subnets.length;
  $("receipts-queued").textContent = o.receipts.queued;
  $("receipts-batched").textContent = o.receipts.batched;
  $("receipts-recorded").textContent = o.receipts.recorded;
  const sum = (key) => o.revenue.reduce((a, r) => a + BigInt(r[key]), 0n).toString();
  $("revenue-settled").textContent = eth(sum("settled_wei"));
  $("revenue-claimable").textContent = eth(sum("claimable_wei"));
  fill("nodes", o.nodes, (n) => [[n.address, "mono"], [n.name], [n.url, "mono"], [when(n.registered_at)]]);
  const versions = o.subnets.flatMap((s) =>
    (s.versions.length ? s.versions : [null]).map((v) => ({ s, v })));
  fill("subnets", versions, ({ s, v }) => [
    [s.subnet_id, "num"], [s.name], [s.owner, "mono"], [v ? v.version : "none", "num"],
    [v ? v.model_hash.slice(0, 18) + "…" : "", "mono"],
    [v ? v.training_run_id.slice(0, 18) + "…" : "", "mono"],
    [v ? v.contributors.map((c, i) => `${c.slice(0, 10)}… ${v.shares_bps[i] / 100}%`).join(", ") : ""],
    [v ? eth(v.settled_wei) : "", "num"], [v ? eth(v.unsettled_wei) : "", "num"],
  ]);
  fill("batches", o.batches, (b) => [
    [b.batch_id, "num"], [b.subnet_id, "num"], [b.version, "num"], [b.requests, "num"],
    [eth(b.total_wei), "num"], [b.gas_used, "num"], [b.block_number, "num"], [b.tx_hash, "mono"],
  ]);
  fill("open-batches", o.open_batches, (b) => [
    [b.key, "mono"], [b.subnet_id, "num"], [b.size, "num"], [b.status], [b.tx_hash || "not sent", "mono"],
  ]);
  chart(o.batches);
  training(o.training_runs);
  audit(o.signer_audit);
  fill("revenue", o.revenue, (r) => [[r.account, "mono"], [eth(r.settled_wei), "num"], [eth(r.claimable_wei), "num"]]);
}

async function load() {
  const headers = adminKey ? { "X-Admin-Key": adminKey } : {};
  const response = await fetch(OVERVIEW, { credentials: "same-origin", headers });
  $("error").hidden = true;
  if (response.ok) {
    render(await response.json());
    $("signin").hidden = true;
    $("dashboard").hidden = false;
    $("refresh").hidden = false;
  } else {
    let detail = `${response.status}`;
    try { detail = (await response.json()).detail || detail; } catch { /* not a problem body */ }
    $("dashboard").hidden = true;
    $("refresh").hidden = true;
    $("signin").hidden = false;
    if (response.status !== 401 || adminKey) {
      $("error").textContent = detail;
      $("error").hidden = false;
    }
  }
  document.body.dataset.status = String(response.status);
}

$("admin-form").addEventListener("submit", (event) => {
  event.preventDefault();
  adminKey = $("admin-key").value.trim();
  load();
});
$("refresh").addEventListener("click", () => load());
load().finally(() => { document.body.dataset.ready = "1"; });
