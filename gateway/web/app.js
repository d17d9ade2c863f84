// The 2PM page for wallet users: sign in with Ethereum, then stake, deposit credit, sign the
// spending cap, manage API keys and check receipts on chain; withdraw stake after the cooldown,
// withdraw credit after the delay and claim payouts, each showing the time left. It talks to the gateway's JSON
// API (same origin, session cookie) and to the chain only through the EIP-1193 wallet
// (window.ethereum): reads are eth_call, writes are eth_sendTransaction signed in the wallet.

import { calldata, decodeRevert, formatUnits, parseUnits, words } from "./abi.js";
import { toChecksumAddress } from "./keccak.js";
import { siweMessage, utf8Hex } from "./siwe.js";
import { SetKeys, loadSeal, norm, sealMessage, standardise } from "./ckks.js";
import { devProvider } from "./devwallet.js";

const SCREENS = ["welcome", "account", "stake", "credit", "predict", "keys", "receipts"];
// Rows per encrypted request (the gateway's bound for one-row-per-ciphertext layouts) and per
// CSV file.
const ROWS_PER_REQUEST = 64;
const CSV_MAX_ROWS = 512;
const RECEIPT_POLL_MS = 500;
const RECEIPT_TIMEOUT_MS = 180_000;
// The gateway caches chain reads for a few seconds and drops them when it sees the logs;
// after a transaction the account is read again at these delays.
const REFRESH_AFTER_TX_MS = [0, 1500, 4000];
// The withdrawal requests the stake screen scans, newest first (requests of all accounts share
// one counter in the vault).
const WITHDRAWAL_SCAN = 64;

const state = {
  config: null, // GET /v1/config
  account: null, // EIP-55 address the wallet exposes
  me: null, // GET /v1/me of the signed-in session
  lastReceipt: null, // GET /v1/receipts/{id}
  subnets: null, // GET /v1/subnets
  setKeys: {}, // CKKS secret keys by parameter-set name: page memory only, never stored or sent
  lastPrediction: null, // {mode, rows, logits, upBytes, downBytes, encryptMs, decryptMs}
};

// ------------------------------------------------------------------------------ errors

/** An error whose message is meant for the user as it is. */
class UserError extends Error {}

/** An RFC 9457 problem answered by the gateway. */
class ProblemError extends UserError {
  constructor(problem, status) {
    super(problem.detail || problem.title || `the gateway answered ${status}`);
    this.problem = problem;
    this.status = status;
  }
}

function revertDataOf(err) {
  // Wallets nest revert data differently: err.data, err.data.data, err.data.originalError.data,
  // err.error.data, or a JSON string in err.body.
  const seen = new Set();
  const stack = [err];
  while (stack.length) {
    const e = stack.pop();
    if (!e || typeof e !== "object" || seen.has(e)) continue;
    seen.add(e);
    if (typeof e.data === "string" && /^0x[0-9a-fA-F]{8}/.test(e.data)) return e.data;
    stack.push(e.data, e.error, e.originalError, e.cause);
  }
  return null;
}

function describeValue(p) {
  if (typeof p.value === "bigint" && p.type.startsWith("uint") && p.value >= 10n ** 12n) {
    return `${formatUnits(p.value)} (${p.value} wei)`;
  }
  return String(p.value);
}

// What the custom errors a user can run into mean, in words.
const ERROR_HINTS = {
  StakingVaultInsufficientStake: "You have less active stake in this token than that.",
  StakingVaultZeroAmount: "The amount rounds to zero.",
  StakingVaultTokenNotAllowed: "The vault does not accept this token now.",
  MockStETHInsufficientBalance: "Your token balance is too low.",
  MockStETHInsufficientAllowance: "The vault's allowance is too low; approve again.",
  ERC20InsufficientBalance: "Your token balance is too low.",
  ERC20InsufficientAllowance: "The vault's allowance is too low; approve again.",
  InferenceLedgerStaleNonce: "A newer spending cap exists already; reload and sign again.",
  InferenceLedgerUnknownBatch: "That batch is not recorded on this chain.",
  InferenceLedgerInsufficientCredit: "You have less credit than that.",
  InferenceLedgerNoPendingWithdrawal: "Nothing to withdraw: request a credit withdrawal first.",
  InferenceLedgerNothingToClaim: "Nothing to claim: no payouts are credited to you.",
  StakingVaultAlreadyWithdrawn: "Nothing to withdraw: that request was paid out already.",
  StakingVaultCooldownActive: "The cooldown has not ended yet.",
  InferenceLedgerWithdrawalNotReady: "The credit withdrawal delay has not ended yet.",
};

/** The wallet's or the chain's error as one line for the user. */
function walletError(err) {
  if (err instanceof UserError) return err;
  const code = err && err.code;
  if (code === 4001) return new UserError("You rejected the request in your wallet.");
  if (code === 4100) return new UserError("The wallet has not authorised this site; connect again.");
  if (code === 4902) {
    return new UserError(`Your wallet does not know chain ${state.config.chain_id}; add it first.`);
  }
  const data = revertDataOf(err);
  const decoded = data ? decodeRevert(data) : null;
  if (decoded) {
    const args = decoded.args.map((p) => `${p.name} ${describeValue(p)}`).join(", ");
    const hint = ERROR_HINTS[decoded.name] ? `${ERROR_HINTS[decoded.name]} ` : "";
    return new UserError(`${hint}The contract refused: ${decoded.name}${args ? ` (${args})` : ""}.`);
  }
  if (data) return new UserError(`The contract refused (revert data ${data.slice(0, 10)}…).`);
  const message = (err && err.message) || String(err);
  return new UserError(`Wallet error: ${message}`);
}

// ------------------------------------------------------------------------------ DOM helpers

const $ = (id) => document.getElementById(id);

function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (k === "class") node.className = v;
    else if (k.startsWith("on")) node.addEventListener(k.slice(2), v);
    else node.setAttribute(k, v);
  }
  for (const c of children) node.append(c instanceof Node ? c : String(c));
  return node;
}

function showError(err) {
  const box = $("error");
  box.textContent = err instanceof UserError ? err.message : `Unexpected error: ${err.message || err}`;
  box.hidden = false;
  if (!(err instanceof UserError)) console.error(err);
}

function clearError() {
  $("error").hidden = true;
  $("error").textContent = "";
}

function notice(text) {
  $("notice").textContent = text;
}

/** Run a user action: one at a time per button, errors shown in the alert box. */
async function action(button, fn) {
  if (button.disabled) return;
  clearError();
  button.disabled = true;
  button.setAttribute("aria-busy", "true");
  try {
    await fn();
  } catch (err) {
    notice("");
    showError(err);
  } finally {
    button.disabled = false;
    button.removeAttribute("aria-busy");
  }
}

function onSubmit(formId, buttonId, fn) {
  $(formId).addEventListener("submit", (ev) => {
    ev.preventDefault();
    action($(buttonId), fn);
  });
}

function eth(wei) {
  return `${formatUnits(BigInt(wei))} ETH`;
}

function when(unixSeconds) {
  if (!unixSeconds) return "–";
  return new Date(Number(unixSeconds) * 1000).toISOString().replace("T", " ").slice(0, 16) + " UTC";
}

/** A wait as a person reads it, its two largest units: "2 h 13 min", "9 min 5 s", "40 s". */
function timeLeft(seconds) {
  let rest = Math.max(0, Number(seconds));
  const units = [];
  for (const [size, name] of [[86400, "d"], [3600, "h"], [60, "min"], [1, "s"]]) {
    units.push([Math.floor(rest / size), name]);
    rest %= size;
  }
  let first = units.findIndex(([n]) => n > 0);
  if (first < 0) first = units.length - 1;
  const shown = [units[first], ...units.slice(first + 1, first + 2).filter(([n]) => n > 0)];
  return shown.map(([n, name]) => `${n} ${name}`).join(" ");
}

/** "ends in 2 h 13 min (at 2026-12-06 17:02 UTC)", or null when the time has come. */
function endsIn(readyAt, now) {
  if (BigInt(readyAt) <= BigInt(now)) return null;
  return `ends in ${timeLeft(Number(BigInt(readyAt) - BigInt(now)))} (at ${when(readyAt)})`;
}

function short(hex) {
  return `${hex.slice(0, 10)}…${hex.slice(-6)}`;
}

// ------------------------------------------------------------------------------ gateway

async function api(method, path, body) {
  const init = { method, headers: { Accept: "application/json" }, credentials: "same-origin" };
  if (body !== undefined) {
    init.headers["Content-Type"] = "application/json";
    init.body = JSON.stringify(body);
  }
  let response;
  try {
    response = await fetch(path, init);
  } catch {
    throw new UserError("The gateway cannot be reached; check your connection and retry.");
  }
  if (response.status === 204) return null;
  const text = await response.text();
  let json = null;
  try {
    json = text ? JSON.parse(text) : null;
  } catch {
    json = null;
  }
  if (!response.ok) throw new ProblemError(json || { title: response.statusText }, response.status);
  return json;
}

// ------------------------------------------------------------------------------ wallet

function ethereum() {
  if (!window.ethereum) throw new UserError("No Ethereum wallet found in this browser.");
  return window.ethereum;
}

async function wallet(method, params = []) {
  try {
    return await ethereum().request({ method, params });
  } catch (err) {
    throw walletError(err);
  }
}

async function ensureChain() {
  const want = BigInt(state.config.chain_id);
  const have = BigInt(await wallet("eth_chainId"));
  if (have !== want) {
    await wallet("wallet_switchEthereumChain", [{ chainId: "0x" + want.toString(16) }]);
  }
}

function signedInAccount() {
  if (!state.me) throw new UserError("Sign in first.");
  if (!state.account || state.account.toLowerCase() !== state.me.address.toLowerCase()) {
    throw new UserError(
      `Your wallet's account is not the signed-in ${state.me.address}; switch back or sign in again.`,
    );
  }
  return state.account;
}

/** The latest block's timestamp: the clock the cooldown and the delay are measured on. */
async function chainTime() {
  const block = await wallet("eth_getBlockByNumber", ["latest", false]);
  return BigInt(block.timestamp);
}

async function read(to, key, args = []) {
  return words(await wallet("eth_call", [{ to, data: calldata(key, args) }, "latest"]));
}

async function waitForReceipt(hash) {
  const deadline = Date.now() + RECEIPT_TIMEOUT_MS;
  while (Date.now() < deadline) {
    const receipt = await wallet("eth_getTransactionReceipt", [hash]);
    if (receipt) return receipt;
    await new Promise((r) => setTimeout(r, RECEIPT_POLL_MS));
  }
  throw new UserError(`Transaction ${hash} is not mined yet; check your wallet.`);
}

/** Simulate, send through the wallet, wait until mined; returns the transaction hash. */
async function send(label, to, data, valueWei = 0n) {
  const from = signedInAccount();
  await ensureChain();
  const tx = { from, to, data, value: "0x" + valueWei.toString(16) };
  await wallet("eth_call", [tx, "latest"]); // surfaces a revert before the wallet asks
  notice(`${label}: confirm in your wallet…`);
  const hash = await wallet("eth_sendTransaction", [tx]);
  notice(`${label}: waiting for ${short(hash)} to be mined…`);
  const receipt = await waitForReceipt(hash);
  if (BigInt(receipt.status) !== 1n) throw new UserError(`${label} failed on chain (${hash}).`);
  notice(`${label}: done (${short(hash)}).`);
  return hash;
}

function amountFrom(inputId) {
  let value;
  try {
    value = parseUnits($(inputId).value);
  } catch (err) {
    throw new UserError(`Amount: ${err.message}.`);
  }
  if (value === 0n) throw new UserError("Amount: enter more than zero.");
  return value;
}

// ------------------------------------------------------------------------------ screens

function show(screen) {
  const signedIn = Boolean(state.me);
  const target = signedIn ? (screen === "welcome" ? "account" : screen) : "welcome";
  for (const name of SCREENS) $(`screen-${name}`).hidden = name !== target;
  for (const a of document.querySelectorAll("#tabs a")) {
    a.classList.toggle("active", a.dataset.screen === target);
    if (a.dataset.screen === target) a.setAttribute("aria-current", "page");
    else a.removeAttribute("aria-current");
  }
  $("tabs").hidden = !signedIn;
  $("signout").hidden = !signedIn;
  if (target === "stake") action($("stake-button"), refreshTokenPosition);
  if (target === "credit") action($("claim"), refreshCreditPosition);
  if (target === "keys") action($("key-create"), refreshKeys);
  if (target === "predict") action($("predict-button"), loadSubnets);
}

function route() {
  const name = location.hash.replace("#", "") || "account";
  show(SCREENS.includes(name) ? name : "account");
}

function renderWalletStatus() {
  const who = state.me ? `Signed in as ${state.me.address}` : null;
  const conn = state.account ? `Wallet: ${state.account}` : "No wallet connected";
  $("wallet-status").textContent = who || conn;
  $("signin").disabled = !state.account;
  $("connect").textContent = state.account ? "Wallet connected" : "Connect wallet";
}

function renderMe() {
  const me = state.me;
  if (!me) return;
  $("me-address").textContent = me.address;
  $("me-tier").textContent = me.tier || "–";
  $("me-stake").textContent = me.stake_wei !== undefined ? eth(me.stake_wei) : "–";
  $("me-credit").textContent = me.credit_wei !== undefined ? eth(me.credit_wei) : "–";
  $("me-pending").textContent =
    me.pending_withdrawal_wei !== undefined ? eth(me.pending_withdrawal_wei) : "–";
  $("me-cap").textContent = me.cap_wei !== undefined ? eth(me.cap_wei) : "–";
  $("me-cap-left").textContent = me.cap_left_wei !== undefined ? eth(me.cap_left_wei) : "–";
  $("me-cap-expiry").textContent = when(me.cap_expiry);
  $("me-spendable").textContent = me.spendable_wei !== undefined ? eth(me.spendable_wei) : "–";
  $("me-outstanding").textContent = eth(me.outstanding_wei || "0");
}

async function refreshMe() {
  try {
    state.me = await api("GET", "/v1/me");
  } catch (err) {
    if (err instanceof ProblemError && err.status === 401) {
      state.me = null;
      renderWalletStatus();
      route();
      return;
    }
    throw err;
  }
  renderMe();
  renderWalletStatus();
  if (state.account && state.account.toLowerCase() === state.me.address.toLowerCase()) {
    const [spent] = await read(state.config.contracts.InferenceLedger, "InferenceLedger.spentOf(address user)", [
      state.me.address,
    ]);
    $("me-spent").textContent = eth(spent);
  } else {
    $("me-spent").textContent = "– (connect the signed-in account)";
  }
}

function refreshAfterTx() {
  for (const delay of REFRESH_AFTER_TX_MS) {
    setTimeout(() => refreshMe().catch(showError), delay);
  }
}

// ------------------------------------------------------------------------------ sign-in

async function connect() {
  const accounts = await wallet("eth_requestAccounts");
  if (!accounts || !accounts.length) throw new UserError("The wallet shared no account.");
  state.account = toChecksumAddress(accounts[0]);
  await ensureChain();
  renderWalletStatus();
  notice("Wallet connected. Sign in to continue.");
}

async function signIn() {
  if (!state.account) await connect();
  await ensureChain();
  const nonce = await api("GET", "/v1/auth/nonce");
  const message = siweMessage({
    domain: nonce.domain,
    address: state.account,
    uri: nonce.uri + location.pathname,
    chainId: nonce.chain_id,
    nonce: nonce.nonce,
  });
  notice("Sign the message in your wallet…");
  const signature = await wallet("personal_sign", [utf8Hex(message), state.account]);
  await api("POST", "/v1/auth/verify", { message, signature });
  notice("Signed in.");
  await refreshMe();
  location.hash = "#account";
  route();
}

/** Forget what the signed-in user saw: the new key's secret, the key list, the receipt. */
function forgetScreens() {
  $("new-key-secret").textContent = "";
  $("new-key").hidden = true;
  $("keys-body").replaceChildren();
  $("receipt").hidden = true;
  $("receipt-fields").replaceChildren();
  $("receipt-proof").replaceChildren();
  state.lastReceipt = null;
  for (const keys of Object.values(state.setKeys)) keys.forget();
  state.setKeys = {}; // the CKKS secret keys go with the session
  state.lastPrediction = null;
  $("predict-results-body").replaceChildren();
  $("predict-results").hidden = true;
  $("predict-stats").textContent = "";
  for (const input of document.querySelectorAll("main input:not(#cap-days)")) input.value = "";
}

async function signOut() {
  await api("POST", "/v1/auth/logout");
  state.me = null;
  forgetScreens();
  notice("Signed out.");
  renderWalletStatus();
  route();
}

// ------------------------------------------------------------------------------ stake

function selectedToken() {
  const address = $("stake-token").value;
  const token = state.config.tokens.find((t) => t.address === address);
  if (!token) throw new UserError("The vault lists no staking token.");
  return token;
}

async function refreshTokenPosition() {
  const token = selectedToken();
  const account = signedInAccount();
  const [balance] = await read(token.address, "MockStETH.balanceOf(address account)", [account]);
  const [, valueWei] = await read(
    state.config.contracts.StakingVault,
    "StakingVault.stakeOf(address account,address token)",
    [account, token.address],
  );
  $("token-balance").textContent = `${formatUnits(balance)} ${token.symbol}`;
  $("token-staked").textContent = `${formatUnits(valueWei)} ETH of ${token.symbol}`;
  await refreshWithdrawals();
}

/** The account's pending withdrawal requests among the newest WITHDRAWAL_SCAN, oldest first. */
async function pendingWithdrawals(account) {
  const vault = state.config.contracts.StakingVault;
  const [count] = await read(vault, "StakingVault.withdrawalRequestCount()");
  const found = [];
  for (let id = count; id >= 1n && id > count - BigInt(WITHDRAWAL_SCAN); id--) {
    const [who, token, readyAt, withdrawn, shares] = await read(
      vault,
      "StakingVault.withdrawalRequest(uint256 requestId)",
      [id],
    );
    if (withdrawn === 0n && BigInt(who) === BigInt(account)) {
      found.unshift({ id, token: "0x" + token.toString(16).padStart(40, "0"), readyAt, shares });
    }
  }
  return found;
}

function symbolOf(address) {
  const token = state.config.tokens.find((t) => BigInt(t.address) === BigInt(address));
  return token ? token.symbol : short(address);
}

async function refreshWithdrawals() {
  const account = signedInAccount();
  const [requests, now] = await Promise.all([pendingWithdrawals(account), chainTime()]);
  const body = $("withdrawals-body");
  body.replaceChildren();
  for (const r of requests) {
    const wait = endsIn(r.readyAt, now);
    const button = el("button", { type: "button", id: `withdraw-request-${r.id}` }, "Withdraw");
    button.addEventListener("click", () => action(button, () => completeWithdrawal(r.id)));
    body.append(
      el(
        "tr",
        { "data-request": String(r.id) },
        el("td", {}, String(r.id)),
        el("td", {}, symbolOf(r.token)),
        el("td", {}, formatUnits(r.shares)),
        el("td", { class: "cooldown" }, wait ? wait : "over: ready to withdraw"),
        el("td", {}, button),
      ),
    );
  }
  $("withdrawals").hidden = requests.length === 0;
  $("withdrawals-none").hidden = requests.length > 0;
}

async function completeWithdrawal(id) {
  const account = signedInAccount();
  const vault = state.config.contracts.StakingVault;
  const [who, , readyAt, withdrawn] = await read(vault, "StakingVault.withdrawalRequest(uint256 requestId)", [
    id,
  ]);
  if (BigInt(who) !== BigInt(account) || withdrawn !== 0n) {
    await refreshWithdrawals();
    throw new UserError(`Nothing to withdraw: request ${id} is not pending for ${account}.`);
  }
  const wait = endsIn(readyAt, await chainTime());
  if (wait) throw new UserError(`The cooldown of withdrawal request ${id} ${wait}.`);
  await send(`Withdraw request ${id}`, vault, calldata("StakingVault.withdraw(uint256 requestId)", [id]));
  await refreshTokenPosition();
  refreshAfterTx();
}

async function stake() {
  const token = selectedToken();
  const amount = amountFrom("stake-amount");
  const account = signedInAccount();
  const vault = state.config.contracts.StakingVault;
  const [balance] = await read(token.address, "MockStETH.balanceOf(address account)", [account]);
  if (balance < amount) {
    throw new UserError(`You hold ${formatUnits(balance)} ${token.symbol}, less than ${formatUnits(amount)}.`);
  }
  const [allowance] = await read(token.address, "MockStETH.allowance(address owner,address spender)", [
    account,
    vault,
  ]);
  if (allowance < amount) {
    await send(
      `Approve ${token.symbol}`,
      token.address,
      calldata("MockStETH.approve(address spender,uint256 amount)", [vault, amount]),
    );
  }
  await send(
    `Stake ${formatUnits(amount)} ${token.symbol}`,
    vault,
    calldata("StakingVault.stake(address token,uint256 amount)", [token.address, amount]),
  );
  $("stake-amount").value = "";
  await refreshTokenPosition();
  refreshAfterTx();
}

async function requestWithdrawal() {
  const token = selectedToken();
  const amount = amountFrom("withdraw-amount");
  const account = signedInAccount();
  const vault = state.config.contracts.StakingVault;
  // The vault counts stETH in Lido shares; wstETH and rETH positions are token amounts.
  let shares = amount;
  if (token.symbol === "stETH") {
    [shares] = await read(token.address, "MockStETH.getSharesByPooledEth(uint256 ethAmount)", [amount]);
    const [staked] = await read(vault, "StakingVault.stakeOf(address account,address token)", [
      account,
      token.address,
    ]);
    if (shares > staked && shares - staked <= 2n) shares = staked; // share rounding of "all"
  }
  await send(
    `Request withdrawal of ${formatUnits(amount)} ${token.symbol}`,
    vault,
    calldata("StakingVault.requestWithdrawal(address token,uint256 shares)", [token.address, shares]),
  );
  $("withdraw-amount").value = "";
  await refreshTokenPosition();
  refreshAfterTx();
}

// ------------------------------------------------------------------------------ credit

async function refreshCreditPosition() {
  const account = signedInAccount();
  const ledger = state.config.contracts.InferenceLedger;
  const [[amount, readyAt], [claimable], now] = await Promise.all([
    read(ledger, "InferenceLedger.pendingWithdrawalOf(address user)", [account]),
    read(ledger, "InferenceLedger.claimableOf(address account)", [account]),
    chainTime(),
  ]);
  const wait = amount > 0n ? endsIn(readyAt, now) : null;
  $("credit-pending").textContent =
    amount === 0n ? "none" : `${eth(amount)}; the delay ${wait ? wait : "is over: ready to withdraw"}`;
  $("claimable").textContent = eth(claimable);
}

async function requestCreditWithdrawal() {
  const amount = amountFrom("credit-withdraw-amount");
  signedInAccount();
  await send(
    `Request withdrawal of ${formatUnits(amount)} ETH of credit`,
    state.config.contracts.InferenceLedger,
    calldata("InferenceLedger.requestCreditWithdrawal(uint256 amount)", [amount]),
  );
  $("credit-withdraw-amount").value = "";
  await refreshCreditPosition();
  refreshAfterTx();
}

async function withdrawCredit() {
  const account = signedInAccount();
  const ledger = state.config.contracts.InferenceLedger;
  const [amount, readyAt] = await read(ledger, "InferenceLedger.pendingWithdrawalOf(address user)", [account]);
  if (amount === 0n) {
    throw new UserError(`Nothing to withdraw: ${account} has no pending credit withdrawal; request one first.`);
  }
  const wait = endsIn(readyAt, await chainTime());
  if (wait) throw new UserError(`The credit withdrawal delay ${wait}.`);
  await send(`Withdraw ${formatUnits(amount)} ETH of credit`, ledger, calldata("InferenceLedger.withdrawCredit()"));
  await refreshCreditPosition();
  refreshAfterTx();
}

async function claim() {
  const account = signedInAccount();
  const ledger = state.config.contracts.InferenceLedger;
  const [claimable] = await read(ledger, "InferenceLedger.claimableOf(address account)", [account]);
  if (claimable === 0n) throw new UserError(`Nothing to claim: no payouts are credited to ${account}.`);
  await send(`Claim ${eth(claimable)}`, ledger, calldata("InferenceLedger.claim()"));
  await refreshCreditPosition();
  refreshAfterTx();
}

async function deposit() {
  const amount = amountFrom("deposit-amount");
  signedInAccount();
  await send(
    `Deposit ${formatUnits(amount)} ETH`,
    state.config.contracts.InferenceLedger,
    calldata("InferenceLedger.deposit()"),
    amount,
  );
  $("deposit-amount").value = "";
  refreshAfterTx();
}

async function signCap() {
  const cap = amountFrom("cap-amount");
  const days = Number($("cap-days").value);
  if (!Number.isInteger(days) || days < 1 || days > 3650) {
    throw new UserError("Valid for: a whole number of days from 1 to 3650.");
  }
  const user = signedInAccount();
  await ensureChain();
  const ledger = state.config.contracts.InferenceLedger;
  const [, , currentNonce] = await read(ledger, "InferenceLedger.authorizationOf(address user)", [user]);
  const nonce = Number(currentNonce + 1n);
  const expiry = Math.floor(Date.now() / 1000) + days * 86_400;
  // The typed data of contracts/eip712.py, domain "2PM InferenceLedger" version "1".
  const typedData = {
    types: {
      EIP712Domain: [
        { name: "name", type: "string" },
        { name: "version", type: "string" },
        { name: "chainId", type: "uint256" },
        { name: "verifyingContract", type: "address" },
      ],
      SpendingAuthorization: [
        { name: "user", type: "address" },
        { name: "maxTotalSpend", type: "uint256" },
        { name: "expiry", type: "uint64" },
        { name: "nonce", type: "uint64" },
      ],
    },
    primaryType: "SpendingAuthorization",
    domain: {
      name: state.config.eip712.name,
      version: state.config.eip712.version,
      chainId: state.config.chain_id,
      verifyingContract: ledger,
    },
    message: { user, maxTotalSpend: cap.toString(), expiry, nonce },
  };
  notice("Sign the spending cap in your wallet…");
  const signature = await wallet("eth_signTypedData_v4", [user, JSON.stringify(typedData)]);
  notice("Submitting the cap on chain…");
  const out = await api("POST", "/v1/spending-authorizations", {
    user,
    max_total_spend_wei: cap.toString(),
    expiry,
    nonce,
    signature,
  });
  notice(`Spending cap of ${formatUnits(cap)} ETH recorded (${short(out.tx_hash)}).`);
  $("cap-amount").value = "";
  refreshAfterTx();
}

// ------------------------------------------------------------------------------ API keys

async function refreshKeys() {
  const { keys } = await api("GET", "/v1/keys");
  const body = $("keys-body");
  body.replaceChildren();
  for (const key of keys) {
    const revoke = el("button", { type: "button", class: "danger", "data-key-id": key.id }, "Revoke");
    revoke.addEventListener("click", () => action(revoke, () => revokeKey(key)));
    body.append(
      el(
        "tr",
        { "data-key-id": key.id },
        el("td", {}, key.name || "(no name)"),
        el("td", { class: "mono" }, key.id),
        el("td", {}, when(key.created_at)),
        el("td", {}, key.subnets ? key.subnets.join(", ") : "all"),
        el("td", {}, revoke),
      ),
    );
  }
  $("keys-empty").hidden = keys.length > 0;
}

async function createKey() {
  const name = $("key-name").value.trim();
  const created = await api("POST", "/v1/keys", { name });
  $("new-key-secret").textContent = created.key;
  $("new-key").hidden = false;
  $("key-name").value = "";
  notice(`Key ${created.id} created.`);
  await refreshKeys();
}

async function revokeKey(key) {
  if (!window.confirm(`Revoke the key "${key.name || key.id}"? Apps using it stop working at once.`)) {
    return;
  }
  await api("DELETE", `/v1/keys/${encodeURIComponent(key.id)}`);
  notice(`Key ${key.id} revoked.`);
  await refreshKeys();
}

// ------------------------------------------------------------------------------ receipts

function fact(list, label, value) {
  list.append(el("dt", {}, label), el("dd", { class: "mono" }, value));
}

async function lookUpReceipt() {
  const id = $("receipt-id").value.trim().toLowerCase();
  if (!/^0x[0-9a-f]{64}$/.test(id)) {
    throw new UserError("A receipt id is 0x followed by 64 hex digits.");
  }
  $("receipt").hidden = true;
  const out = await api("GET", `/v1/receipts/${id}`);
  state.lastReceipt = out;
  const r = out.receipt;
  const list = $("receipt-fields");
  list.replaceChildren();
  fact(list, "Status", out.status);
  fact(list, "Subnet", String(r.subnet_id));
  fact(list, "Price", eth(r.price_wei));
  fact(list, "Rows", String(r.rows));
  fact(list, "Served at", when(r.timestamp));
  fact(list, "Model hash", r.model_hash);
  fact(list, "Request hash", r.request_hash);
  fact(list, "Response hash", r.response_hash);
  if (out.batch) {
    fact(list, "Batch", out.batch.batch_id === null ? `(${out.batch.status})` : `#${out.batch.batch_id}`);
    fact(list, "Merkle root", out.batch.root);
    if (out.batch.tx_hash) fact(list, "Recorded in", out.batch.tx_hash);
    if (out.batch.block_number !== null) fact(list, "Block", String(out.batch.block_number));
    if (out.batch.error) fact(list, "Error", out.batch.error);
  }
  const proof = $("receipt-proof");
  proof.replaceChildren(...(out.proof || []).map((p) => el("li", {}, p)));
  if (out.proof && out.proof.length === 0) {
    proof.append(el("li", { class: "none" }, "(none: the batch holds only this receipt)"));
  }
  const provable = Boolean(out.proof && out.batch && out.batch.batch_id !== null);
  $("receipt-verify").hidden = !provable;
  $("receipt-verdict").textContent = provable
    ? ""
    : "Not recorded on chain yet; batches are recorded every few seconds. Look it up again shortly.";
  $("receipt-verdict").className = "";
  $("receipt").hidden = false;
}

async function verifyReceipt() {
  const out = state.lastReceipt;
  if (!out || !out.proof) throw new UserError("Look up a recorded receipt first.");
  await ensureChain();
  const r = out.receipt;
  const receipt = [
    r.receipt_id,
    r.user,
    BigInt(r.subnet_id),
    r.model_hash,
    r.request_hash,
    r.response_hash,
    BigInt(r.price_wei),
    BigInt(r.timestamp),
  ];
  const [ok] = await read(
    state.config.contracts.InferenceLedger,
    "InferenceLedger.verifyReceipt(uint256 batchId,(bytes32,address,uint256,bytes32,bytes32,bytes32,uint256,uint64) receipt,bytes32[] proof)",
    [BigInt(out.batch.batch_id), receipt, out.proof],
  );
  const verdict = $("receipt-verdict");
  if (ok === 1n) {
    verdict.textContent = `Verified on chain: the receipt is in batch #${out.batch.batch_id} of the InferenceLedger.`;
    verdict.className = "ok";
  } else {
    verdict.textContent = "NOT verified: the chain does not accept this proof.";
    verdict.className = "bad";
  }
}

// ------------------------------------------------------------------------------ predict

function selectedSubnet() {
  const id = Number($("predict-subnet").value);
  return (state.subnets || []).find((s) => s.id === id) || null;
}

async function loadSubnets() {
  if (!state.subnets) {
    const answer = await api("GET", "/v1/subnets");
    state.subnets = answer.subnets.filter((s) => s.model_status === "ready");
    $("predict-subnet").replaceChildren(
      ...state.subnets.map((s) => el("option", { value: String(s.id) }, `${s.id} · ${s.name}`)),
    );
  }
  renderPredictForm();
}

function renderPredictForm() {
  const subnet = selectedSubnet();
  const fields = $("predict-fields");
  if (!subnet) {
    fields.replaceChildren(el("p", { class: "muted" }, "No subnet serves a model yet."));
    $("predict-set-info").textContent = "";
    return;
  }
  fields.replaceChildren(
    ...subnet.feature_names.map((name) =>
      el(
        "label",
        {},
        name,
        el("input", { "data-feature": name, inputmode: "decimal", autocomplete: "off" }),
      ),
    ),
  );
  renderSetInfo();
}

function renderSetInfo() {
  const subnet = selectedSubnet();
  const mode = $("predict-mode").value;
  const info = $("predict-set-info");
  if (!subnet || mode === "plain") {
    info.textContent = subnet ? "Plain: the gateway sees the row and the result." : "";
    return;
  }
  const set = (subnet.ckks_parameter_sets || {})[mode];
  if (!set) {
    info.textContent = `This subnet does not offer the ${mode} parameters.`;
    return;
  }
  const error = set.max_abs_logit_error === null ? "not measured yet" : `at most ${set.max_abs_logit_error}`;
  info.textContent =
    `${mode}: N = ${set.poly_modulus_degree}, primes of ${set.coeff_mod_bit_sizes.join(", ")} bits, ` +
    `128-bit security, SEAL ${set.seal_versions.join(" / ")}; logit error ${error} ` +
    `(measured by the gateway on this model); rows within ${set.input_radius_sd} standard ` +
    "deviations of the training mean.";
}

/** The form's row, checked: every feature a finite number. */
function formRow(subnet) {
  const row = [];
  const problems = [];
  for (const input of $("predict-fields").querySelectorAll("input[data-feature]")) {
    const text = input.value.trim();
    const value = Number(text);
    const bad = text === "" || !Number.isFinite(value);
    input.setAttribute("aria-invalid", bad ? "true" : "false");
    if (bad) problems.push(input.dataset.feature);
    row.push(value);
  }
  if (problems.length) {
    throw new UserError(`Enter a number for: ${problems.join(", ")}.`);
  }
  if (row.length !== subnet.feature_names.length) throw new UserError("The form is out of date; reload.");
  return row;
}

/** CSV text -> rows in the subnet's feature order (header line of feature names). */
function csvRows(text, subnet) {
  const lines = text.split(/\r?\n/).map((l) => l.trim()).filter((l) => l && !l.startsWith("#"));
  if (lines.length < 2) throw new UserError("The file needs a header line and at least one row.");
  const header = lines[0].split(",").map((h) => h.trim().replace(/^"|"$/g, ""));
  const names = subnet.feature_names;
  const missing = names.filter((n) => !header.includes(n));
  if (missing.length) throw new UserError(`The file's header lacks: ${missing.join(", ")}.`);
  const unknown = header.filter((h) => !names.includes(h));
  if (unknown.length) throw new UserError(`The file's header has unknown columns: ${unknown.join(", ")}.`);
  const index = names.map((n) => header.indexOf(n));
  const rows = lines.slice(1);
  if (rows.length > CSV_MAX_ROWS) throw new UserError(`The file has ${rows.length} rows; at most ${CSV_MAX_ROWS}.`);
  return rows.map((line, i) => {
    const cells = line.split(",");
    if (cells.length !== header.length) {
      throw new UserError(`Line ${i + 2} has ${cells.length} values; the header has ${header.length}.`);
    }
    return index.map((k, j) => {
      const value = Number(cells[k].trim());
      if (cells[k].trim() === "" || !Number.isFinite(value)) {
        throw new UserError(`Line ${i + 2}, ${names[j]}: "${cells[k].trim()}" is not a number.`);
      }
      return value;
    });
  });
}

async function postBinary(path, body) {
  let response;
  try {
    response = await fetch(path, {
      method: "POST",
      headers: { "Content-Type": "application/octet-stream", Accept: "application/octet-stream" },
      body,
      credentials: "same-origin",
    });
  } catch {
    throw new UserError("The gateway cannot be reached; check your connection and retry.");
  }
  const bytes = new Uint8Array(await response.arrayBuffer());
  if (!response.ok) {
    let problem = { title: response.statusText };
    try {
      problem = JSON.parse(new TextDecoder().decode(bytes));
    } catch {
      // not a problem document
    }
    const slug = String(problem.type || "").split("/").pop();
    const err = new ProblemError(problem, response.status);
    err.message = `The gateway refused the encrypted request (${response.status}${slug ? ` ${slug}` : ""}): ${err.message}`;
    throw err;
  }
  return { bytes, receiptId: response.headers.get("X-Receipt-Id") };
}

async function keysFor(set) {
  if (!state.setKeys[set.name]) {
    notice("Loading the encryption library…");
    const seal = await loadSeal();
    state.setKeys[set.name] = new SetKeys(seal, set);
  }
  return state.setKeys[set.name];
}

async function predictPrivately(subnet, set, rows) {
  const z = standardise(rows, subnet.feature_standardisation);
  z.forEach((r, i) => {
    const distance = norm(r);
    if (distance > set.input_radius_sd) {
      throw new UserError(
        `Row ${i + 1} lies ${distance.toFixed(1)} standard deviations from the training mean; ` +
          `the ${set.name} parameters take rows within ${set.input_radius_sd}.`,
      );
    }
  });
  const keys = await keysFor(set);
  const out = { logits: [], receipts: [], upBytes: 0, downBytes: 0, encryptMs: 0, decryptMs: 0 };
  for (let start = 0; start < z.length; start += ROWS_PER_REQUEST) {
    const part = z.slice(start, start + ROWS_PER_REQUEST);
    notice(`Encrypting rows ${start + 1}–${start + part.length}…`);
    let t0 = performance.now();
    let body;
    try {
      body = keys.encrypt(part);
    } catch (err) {
      throw new UserError(`Encryption failed: ${sealMessage(err)}`);
    }
    out.encryptMs += performance.now() - t0;
    out.upBytes += body.length;
    notice(`Sending ${body.length} encrypted bytes…`);
    const answer = await postBinary(`/v1/subnets/${subnet.id}/infer`, body);
    out.downBytes += answer.bytes.length;
    t0 = performance.now();
    let logits;
    try {
      logits = keys.decrypt(answer.bytes);
    } catch (err) {
      throw new UserError(`The answer does not decrypt: ${sealMessage(err)}`);
    }
    out.decryptMs += performance.now() - t0;
    if (logits.length !== part.length) throw new UserError("The answer has the wrong number of rows.");
    out.logits.push(...logits);
    out.receipts.push(...part.map(() => answer.receiptId));
  }
  return out;
}

async function predictPlainly(subnet, rows) {
  const named = rows.map((r) => Object.fromEntries(subnet.feature_names.map((n, k) => [n, r[k]])));
  const t0 = performance.now();
  const answer = await api("POST", `/v1/subnets/${subnet.id}/predict`, { rows: named });
  return {
    logits: answer.logits,
    receipts: rows.map(() => null),
    upBytes: JSON.stringify({ rows: named }).length,
    downBytes: JSON.stringify(answer).length,
    encryptMs: 0,
    decryptMs: 0,
    roundTripMs: performance.now() - t0,
  };
}

function sigmoid(z) {
  return z >= 0 ? 1 / (1 + Math.exp(-z)) : Math.exp(z) / (1 + Math.exp(z));
}

async function predictRows(rows) {
  const subnet = selectedSubnet();
  if (!subnet) throw new UserError("Choose a subnet.");
  const mode = $("predict-mode").value;
  $("predict-results-body").replaceChildren();
  $("predict-results").hidden = true;
  $("predict-stats").textContent = "";
  let result;
  if (mode === "plain") {
    result = await predictPlainly(subnet, rows);
  } else {
    const set = (subnet.ckks_parameter_sets || {})[mode];
    if (!set) throw new UserError(`This subnet does not offer the ${mode} parameters.`);
    result = await predictPrivately(subnet, set, rows);
  }
  state.lastPrediction = { mode, rows: rows.length, ...result };
  const body = $("predict-results-body");
  body.replaceChildren(
    ...result.logits.map((logit, i) =>
      el(
        "tr",
        { "data-logit": String(logit), "data-probability": String(sigmoid(logit)) },
        el("td", {}, String(i + 1)),
        el("td", {}, sigmoid(logit).toFixed(4)),
        el("td", {}, logit.toFixed(4)),
        el("td", {}, mode === "plain" ? "plain" : `private · ${mode}`),
        el("td", { class: "mono" }, result.receipts[i] ? short(result.receipts[i]) : "–"),
      ),
    ),
  );
  $("predict-results").hidden = false;
  const stats = $("predict-stats");
  stats.dataset.upBytes = String(result.upBytes);
  stats.dataset.downBytes = String(result.downBytes);
  stats.dataset.encryptMs = String(result.encryptMs);
  stats.dataset.decryptMs = String(result.decryptMs);
  stats.textContent =
    mode === "plain"
      ? `${rows.length} row(s), plain: ${result.upBytes} bytes up, ${result.downBytes} down.`
      : `${rows.length} row(s), encrypted: ${result.upBytes} bytes up, ${result.downBytes} down; ` +
        `encrypting took ${result.encryptMs.toFixed(1)} ms, decrypting ${result.decryptMs.toFixed(1)} ms ` +
        "in this browser. The secret key never left this page.";
  notice(`Predicted ${rows.length} row(s).`);
}

async function predictForm() {
  const subnet = selectedSubnet();
  if (!subnet) throw new UserError("Choose a subnet.");
  await predictRows([formRow(subnet)]);
}

async function predictCsv() {
  const subnet = selectedSubnet();
  if (!subnet) throw new UserError("Choose a subnet.");
  const file = $("predict-csv").files[0];
  if (!file) throw new UserError("Choose a CSV file first.");
  await predictRows(csvRows(await file.text(), subnet));
}

/** Development only: a page-local wallet for a dev account of the local `twopm up` stack. */
async function useDevAccount() {
  const account = $("dev-account").value;
  if (!account) throw new UserError("Choose a dev account.");
  window.ethereum = devProvider(account, Number(state.config.chain_id));
  $("no-wallet").hidden = true;
  $("connect").disabled = false;
  await connect();
  notice(`Using dev account ${toChecksumAddress(account)} (development only).`);
}

// ------------------------------------------------------------------------------ start

function wire() {
  $("connect").addEventListener("click", () => action($("connect"), connect));
  $("signin").addEventListener("click", () => action($("signin"), signIn));
  $("signout").addEventListener("click", () => action($("signout"), signOut));
  $("refresh").addEventListener("click", () => action($("refresh"), refreshMe));
  $("stake-token").addEventListener("change", () => action($("stake-button"), refreshTokenPosition));
  onSubmit("stake-form", "stake-button", stake);
  onSubmit("withdraw-form", "withdraw-button", requestWithdrawal);
  onSubmit("credit-withdraw-form", "credit-withdraw-request", requestCreditWithdrawal);
  $("credit-withdraw-complete").addEventListener("click", () =>
    action($("credit-withdraw-complete"), withdrawCredit),
  );
  $("claim").addEventListener("click", () => action($("claim"), claim));
  onSubmit("deposit-form", "deposit-button", deposit);
  onSubmit("cap-form", "cap-button", signCap);
  onSubmit("key-form", "key-create", createKey);
  onSubmit("receipt-form", "receipt-lookup", lookUpReceipt);
  onSubmit("predict-form", "predict-button", predictForm);
  $("predict-csv-button").addEventListener("click", () => action($("predict-csv-button"), predictCsv));
  $("predict-subnet").addEventListener("change", renderPredictForm);
  $("predict-mode").addEventListener("change", renderSetInfo);
  $("receipt-verify").addEventListener("click", () => action($("receipt-verify"), verifyReceipt));
  $("new-key-copy").addEventListener("click", () =>
    action($("new-key-copy"), async () => {
      try {
        await navigator.clipboard.writeText($("new-key-secret").textContent);
      } catch {
        throw new UserError("The browser did not allow copying; select the key and copy it.");
      }
      notice("Key copied.");
    }),
  );
  $("new-key-done").addEventListener("click", () => {
    $("new-key-secret").textContent = "";
    $("new-key").hidden = true;
  });
  $("dev-use").addEventListener("click", () => action($("dev-use"), useDevAccount));
  window.addEventListener("hashchange", route);
  if (window.ethereum && window.ethereum.on) {
    window.ethereum.on("accountsChanged", (accounts) => {
      state.account = accounts && accounts.length ? toChecksumAddress(accounts[0]) : null;
      renderWalletStatus();
      refreshMe().catch(showError);
    });
  }
}

async function start() {
  wire();
  state.config = await api("GET", "/v1/config");
  const select = $("stake-token");
  select.replaceChildren(
    ...state.config.tokens.map((t) => el("option", { value: t.address }, t.symbol)),
  );
  $("footer").textContent =
    `Chain ${state.config.chain_id} · InferenceLedger ${state.config.contracts.InferenceLedger || "–"}` +
    ` · StakingVault ${state.config.contracts.StakingVault || "–"}`;
  const dev = state.config.dev_accounts || [];
  $("dev-wallet").hidden = dev.length === 0;
  $("dev-account").replaceChildren(
    ...dev.map((a) => el("option", { value: a }, toChecksumAddress(a))),
  );
  $("no-wallet").hidden = Boolean(window.ethereum) || dev.length > 0;
  $("connect").disabled = !window.ethereum;
  if (window.ethereum) {
    const accounts = await wallet("eth_accounts"); // no prompt: only if already connected
    if (accounts && accounts.length) state.account = toChecksumAddress(accounts[0]);
  }
  await refreshMe();
  renderWalletStatus();
  route();
  document.body.dataset.ready = "true";
}

start().catch((err) => {
  showError(err);
  document.body.dataset.ready = "error";
});
