// Sign-In with Ethereum: the EIP-4361 message text (https://eips.ethereum.org/EIPS/eip-4361).
// The gateway's GET /v1/auth/nonce names the domain, URI origin, chain id and a fresh nonce;
// the wallet signs the text with personal_sign and POST /v1/auth/verify checks it strictly.

export const STATEMENT = "Sign in to 2PM to manage your stake, credit and API keys.";

/**
 * The EIP-4361 message, field order and wording as the ABNF of the EIP has them.
 * @param {object} fields
 * @param {string} fields.domain authority of the gateway, e.g. "gw.example:8443"
 * @param {string} fields.address EIP-55 address
 * @param {string} fields.uri the resource being signed in to
 * @param {number} fields.chainId EIP-155 chain id
 * @param {string} fields.nonce the gateway's nonce (at least 8 alphanumerics)
 * @param {Date} [fields.issuedAt] defaults to now
 * @param {string} [fields.statement]
 * @returns {string}
 */
export function siweMessage({ domain, address, uri, chainId, nonce, issuedAt, statement }) {
  const lines = [`${domain} wants you to sign in with your Ethereum account:`, address, ""];
  const text = statement === undefined ? STATEMENT : statement;
  if (text) lines.push(text, "");
  lines.push(
    `URI: ${uri}`,
    "Version: 1",
    `Chain ID: ${chainId}`,
    `Nonce: ${nonce}`,
    `Issued At: ${(issuedAt || new Date()).toISOString()}`,
  );
  return lines.join("\n");
}

/** UTF-8 bytes of a string as 0x-hex, the form personal_sign takes. */
export function utf8Hex(text) {
  return (
    "0x" + Array.from(new TextEncoder().encode(text), (b) => b.toString(16).padStart(2, "0")).join("")
  );
}
