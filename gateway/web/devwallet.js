// A page-local EIP-1193 provider (https://eips.ethereum.org/EIPS/eip-1193) for the development
// accounts of a local `twopm up` stack: DEVELOPMENT ONLY. The gateway offers it only when
// `twopm up` started it (GET /v1/config lists `dev_accounts`); the accounts' keys stay in the
// local anvil chain, which signs for its unlocked accounts. Requests go to the gateway's
// POST /v1/dev/rpc, which forwards reads and the three signing methods of a wallet.

function fail(code, message, data) {
  const err = new Error(message);
  err.code = code;
  if (data !== undefined) err.data = data;
  return err;
}

/** An EIP-1193 provider for one dev account on chain `chainId` (a number). */
export function devProvider(account, chainId) {
  const address = account.toLowerCase();
  const hexChain = `0x${chainId.toString(16)}`;
  return {
    isTwopmDevWallet: true,
    async request({ method, params = [] }) {
      switch (method) {
        case "eth_requestAccounts":
        case "eth_accounts":
          return [address];
        case "eth_chainId":
          return hexChain;
        case "wallet_switchEthereumChain":
          if (BigInt(params[0].chainId) !== BigInt(chainId)) throw fail(4902, "Unrecognized chain ID.");
          return null;
        default:
          break;
      }
      const response = await fetch("/v1/dev/rpc", {
        method: "POST",
        headers: { "Content-Type": "application/json", Accept: "application/json" },
        body: JSON.stringify({ method, params }),
        credentials: "same-origin",
      });
      const answer = await response.json();
      if (!response.ok) throw fail(4100, answer.detail || answer.title || "refused");
      if (answer.error) throw fail(answer.error.code, answer.error.message, answer.error.data);
      return answer.result;
    },
    on() {},
    removeListener() {},
  };
}
