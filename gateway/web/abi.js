// Static ABI encoding of the few contract calls the page makes, and decoding of their answers
// and of custom-error reverts (https://docs.soliditylang.org/en/latest/abi-spec.html).
//
// Each key is "Contract.name(type name,...)"; the value is the 4-byte selector, the first four
// bytes of keccak256 of the canonical signature. The selectors are hard-coded so the page needs
// no ABI files; tests/web/test_web_abi.py checks every entry (types, names, selector) against the
// committed artifacts in contracts/artifacts/, so they cannot drift. ERC-20 calls are checked
// against MockStETH, the local stand-in of stETH.

export const SELECTORS = Object.freeze({
  "MockStETH.allowance(address owner,address spender)": "0xdd62ed3e",
  "MockStETH.approve(address spender,uint256 amount)": "0x095ea7b3",
  "MockStETH.balanceOf(address account)": "0x70a08231",
  "MockStETH.getSharesByPooledEth(uint256 ethAmount)": "0x19208451",
  "StakingVault.stake(address token,uint256 amount)": "0xadc9772e",
  "StakingVault.requestWithdrawal(address token,uint256 shares)": "0xda95ebf7",
  "StakingVault.stakeOf(address account,address token)": "0xce4cb876",
  "StakingVault.withdraw(uint256 requestId)": "0x2e1a7d4d",
  "StakingVault.withdrawalRequest(uint256 requestId)": "0x5209cb98",
  "StakingVault.withdrawalRequestCount()": "0x19e44e32",
  "InferenceLedger.deposit()": "0xd0e30db0",
  "InferenceLedger.authorizationOf(address user)": "0xcc90b6bb",
  "InferenceLedger.spentOf(address user)": "0x8ea91f7a",
  "InferenceLedger.requestCreditWithdrawal(uint256 amount)": "0xfddf09a5",
  "InferenceLedger.withdrawCredit()": "0xc36f3874",
  "InferenceLedger.pendingWithdrawalOf(address user)": "0x194ad7bb",
  "InferenceLedger.claimableOf(address account)": "0x8903ab9d",
  "InferenceLedger.claim()": "0x4e71d92d",
  "InferenceLedger.verifyReceipt(uint256 batchId,(bytes32,address,uint256,bytes32,bytes32,bytes32,uint256,uint64) receipt,bytes32[] proof)":
    "0x542e23fa",
});

// Custom errors the page can explain; same key form, checked the same way.
export const ERRORS = Object.freeze({
  "StakingVault.StakingVaultTokenNotAllowed(address token)": "0xc015e31f",
  "StakingVault.StakingVaultZeroAmount()": "0x221036a4",
  "StakingVault.StakingVaultInsufficientStake(address account,address token,uint256 staked,uint256 requested)":
    "0xb7f60d37",
  "StakingVault.SafeERC20FailedOperation(address token)": "0x5274afe7",
  "StakingVault.StakingVaultCooldownActive(uint256 requestId,uint64 readyAt,uint256 timestamp)":
    "0x99e38d34",
  "StakingVault.StakingVaultAlreadyWithdrawn(uint256 requestId)": "0x86e688ef",
  "InferenceLedger.InferenceLedgerZeroAmount()": "0xa50b3fc2",
  "InferenceLedger.InferenceLedgerStaleNonce(address user,uint64 nonce,uint64 currentNonce)":
    "0xbe44d892",
  "InferenceLedger.InferenceLedgerInvalidSignature(address user)": "0x67c68419",
  "InferenceLedger.InferenceLedgerAuthorizationExpired(address user,uint64 expiry)": "0x7f36b5a6",
  "InferenceLedger.InferenceLedgerUnknownBatch(uint256 batchId)": "0x54f16ded",
  "InferenceLedger.InferenceLedgerWithdrawalNotReady(address user,uint64 readyAt,uint256 timestamp)":
    "0x6d17bc97",
  "InferenceLedger.InferenceLedgerNoPendingWithdrawal(address user)": "0x937b1804",
  "InferenceLedger.InferenceLedgerNothingToClaim(address account)": "0x5fb891a2",
  "InferenceLedger.InferenceLedgerInsufficientCredit(address user,uint256 balance,uint256 amount)":
    "0xf1bb6a0a",
  "MockStETH.MockStETHInsufficientBalance(address account,uint256 balance,uint256 needed)":
    "0x1e887fd0",
  "MockStETH.MockStETHInsufficientAllowance(address owner,address spender,uint256 allowance,uint256 needed)":
    "0x27f80f1b",
  "MockRETH.ERC20InsufficientBalance(address sender,uint256 balance,uint256 needed)": "0xe450d38c",
  "MockRETH.ERC20InsufficientAllowance(address spender,uint256 allowance,uint256 needed)":
    "0xfb8f41b2",
});

const ERROR_STRING = "0x08c379a0"; // Error(string)
const PANIC = "0x4e487b71"; // Panic(uint256)

/** Split "a,(b,c),d[]" at the commas outside parentheses. */
export function splitTopLevel(text) {
  const parts = [];
  let depth = 0;
  let start = 0;
  for (let i = 0; i < text.length; i++) {
    if (text[i] === "(") depth++;
    else if (text[i] === ")") depth--;
    else if (text[i] === "," && depth === 0) {
      parts.push(text.slice(start, i));
      start = i + 1;
    }
  }
  if (text.length > 0) parts.push(text.slice(start));
  return parts;
}

/**
 * Parse a key of SELECTORS or ERRORS.
 * @param {string} key "Contract.name(type name,...)"
 * @returns {{contract: string, name: string, params: {type: string, name: string}[]}}
 */
export function parseSignature(key) {
  const dot = key.indexOf(".");
  const open = key.indexOf("(");
  const inner = key.slice(open + 1, -1);
  const params = splitTopLevel(inner).map((piece) => {
    const space = piece.lastIndexOf(" ");
    return space < 0
      ? { type: piece, name: "" }
      : { type: piece.slice(0, space), name: piece.slice(space + 1) };
  });
  return { contract: key.slice(0, dot), name: key.slice(dot + 1, open), params };
}

function staticWords(type) {
  if (type.startsWith("(")) {
    return splitTopLevel(type.slice(1, -1)).reduce((n, t) => n + staticWords(t), 0);
  }
  return 1;
}

function word(value) {
  return value.toString(16).padStart(64, "0");
}

function encodeStatic(type, value) {
  if (type.startsWith("(")) {
    const types = splitTopLevel(type.slice(1, -1));
    if (!Array.isArray(value) || value.length !== types.length) {
      throw new Error(`expected ${types.length} fields for ${type}`);
    }
    return types.map((t, i) => encodeStatic(t, value[i])).join("");
  }
  const uint = /^uint(\d+)$/.exec(type);
  if (uint) {
    const n = BigInt(value);
    if (n < 0n || n >= 1n << BigInt(uint[1])) throw new Error(`${value} does not fit ${type}`);
    return word(n);
  }
  if (type === "address") {
    if (!/^0x[0-9a-fA-F]{40}$/.test(value)) throw new Error(`not an address: ${value}`);
    return value.slice(2).toLowerCase().padStart(64, "0");
  }
  if (type === "bytes32") {
    if (!/^0x[0-9a-fA-F]{64}$/.test(value)) throw new Error(`not a bytes32: ${value}`);
    return value.slice(2).toLowerCase();
  }
  if (type === "bool") return word(value ? 1n : 0n);
  throw new Error(`unsupported ABI type ${type}`);
}

/**
 * ABI-encode arguments: static types inline, `T[]` of a static `T` in the tail.
 * @param {string[]} types
 * @param {unknown[]} values
 * @returns {string} hex without 0x
 */
export function encodeArgs(types, values) {
  if (types.length !== values.length) throw new Error("wrong number of arguments");
  const headWords = types.reduce((n, t) => n + (t.endsWith("[]") ? 1 : staticWords(t)), 0);
  let head = "";
  let tail = "";
  types.forEach((type, i) => {
    if (type.endsWith("[]")) {
      const item = type.slice(0, -2);
      head += word(BigInt(headWords * 32 + tail.length / 2));
      tail += word(BigInt(values[i].length)) + values[i].map((v) => encodeStatic(item, v)).join("");
    } else {
      head += encodeStatic(type, values[i]);
    }
  });
  return head + tail;
}

/**
 * Calldata of a call listed in SELECTORS.
 * @param {string} key a SELECTORS key
 * @param {unknown[]} args in the order of the signature
 * @returns {string} 0x-hex
 */
export function calldata(key, args = []) {
  const selector = SELECTORS[key];
  if (!selector) throw new Error(`unknown function ${key}`);
  const types = parseSignature(key).params.map((p) => p.type);
  return selector + encodeArgs(types, args);
}

/** 32-byte words of 0x-hex return data, as BigInts. */
export function words(hex) {
  const body = (hex || "0x").slice(2);
  const out = [];
  for (let i = 0; i + 64 <= body.length; i += 64) out.push(BigInt("0x" + body.slice(i, i + 64)));
  return out;
}

function decodeValue(type, w) {
  if (type === "address") return "0x" + w.toString(16).padStart(40, "0");
  if (type === "bytes32") return "0x" + word(w);
  if (type === "bool") return w === 1n;
  return w;
}

/**
 * Decode revert data: a custom error of ERRORS, Error(string) or Panic(uint256).
 * @param {string} data 0x-hex revert data
 * @returns {{name: string, args: {name: string, type: string, value: unknown}[]} | null}
 *   null when the data is not one of those
 */
export function decodeRevert(data) {
  if (typeof data !== "string" || !/^0x[0-9a-fA-F]{8}/.test(data)) return null;
  const selector = data.slice(0, 10).toLowerCase();
  const w = words("0x" + data.slice(10));
  if (selector === ERROR_STRING && w.length >= 2) {
    const length = Number(w[1]);
    const start = 10 + 128;
    const bytes = data.slice(start, start + 2 * length).match(/../g) || [];
    const text = new TextDecoder().decode(new Uint8Array(bytes.map((b) => parseInt(b, 16))));
    return { name: "Error", args: [{ name: "reason", type: "string", value: text }] };
  }
  if (selector === PANIC && w.length >= 1) {
    return { name: "Panic", args: [{ name: "code", type: "uint256", value: w[0] }] };
  }
  for (const [key, sel] of Object.entries(ERRORS)) {
    if (sel !== selector) continue;
    const sig = parseSignature(key);
    if (w.length < sig.params.length) return null;
    return {
      name: sig.name,
      args: sig.params.map((p, i) => ({ ...p, value: decodeValue(p.type, w[i]) })),
    };
  }
  return null;
}

/**
 * A decimal amount ("1.5") in the smallest unit (1.5 * 10**decimals), exactly.
 * @param {string} text
 * @param {number} decimals
 * @returns {bigint}
 * @throws {Error} not a plain non-negative decimal, or more fraction digits than `decimals`
 */
export function parseUnits(text, decimals = 18) {
  const s = String(text).trim();
  const m = /^(\d*)(?:\.(\d*))?$/.exec(s);
  if (!m || s === "" || s === ".") throw new Error(`"${s}" is not an amount; write e.g. 0.5`);
  const whole = m[1] || "0";
  const fraction = m[2] || "";
  if (fraction.length > decimals) throw new Error(`at most ${decimals} decimals`);
  return BigInt(whole) * 10n ** BigInt(decimals) + BigInt(fraction.padEnd(decimals, "0") || "0");
}

/**
 * The decimal text of an amount in the smallest unit, without trailing zeros.
 * @param {bigint} value
 * @param {number} decimals
 * @returns {string}
 */
export function formatUnits(value, decimals = 18) {
  const v = BigInt(value);
  const sign = v < 0n ? "-" : "";
  const abs = v < 0n ? -v : v;
  const base = 10n ** BigInt(decimals);
  const fraction = (abs % base).toString().padStart(decimals, "0").replace(/0+$/, "");
  return sign + (abs / base).toString() + (fraction ? "." + fraction : "");
}
