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
