// A test EIP-1193 provider (https://eips.ethereum.org/EIPS/eip-1193) injected before the page
// loads. It exposes one anvil dev account and forwards every other request to anvil's JSON-RPC
// through the Playwright binding window.__twopmRpc (anvil signs for its unlocked accounts).
// Like a browser wallet it returns the account in lower case and can be told to refuse the
// next request of a kind with code 4001 (user rejected).
(() => {
  const ACCOUNT = "__ACCOUNT__".toLowerCase();
  const CHAIN_ID = "__CHAIN_ID__"; // hex; the wallet's current chain
  const KNOWN_CHAINS = __KNOWN_CHAINS__; // hex ids the wallet can switch to
  const listeners = {};
  const refusals = new Set();
  let chainId = CHAIN_ID;

  function fail(code, message, data) {
    const err = new Error(message);
    err.code = code;
    if (data !== undefined) err.data = data;
    return err;
  }

  async function forward(method, params) {
    const answer = JSON.parse(await window.__twopmRpc(JSON.stringify({ method, params })));
    if (answer.error) throw fail(answer.error.code, answer.error.message, answer.error.data);
    return answer.result;
  }

  // Requests the wallet answers itself are still reported, so tests see every request.
  function record(method, params) {
    return window.__twopmRpc(JSON.stringify({ method, params, local: true }));
  }

  window.__twopmTestWallet = {
    refuseNext(method) {
      refusals.add(method);
    },
    emit(event, value) {
      for (const fn of listeners[event] || []) fn(value);
    },
  };

  window.ethereum = {
    isTwopmTestWallet: true,
    async request({ method, params = [] }) {
      if (refusals.delete(method)) {
        await record(method, params);
        throw fail(4001, "User rejected the request.");
      }
      switch (method) {
        case "eth_requestAccounts":
        case "eth_accounts":
          await record(method, params);
          return [ACCOUNT];
        case "eth_chainId":
          return chainId;
        case "wallet_switchEthereumChain": {
          await record(method, params);
          const wanted = BigInt(params[0].chainId);
          if (!KNOWN_CHAINS.some((c) => BigInt(c) === wanted)) {
            throw fail(4902, `Unrecognized chain ID ${params[0].chainId}.`);
          }
          chainId = "0x" + wanted.toString(16);
          return null;
        }
        default:
          return forward(method, params);
      }
    },
    on(event, fn) {
      (listeners[event] = listeners[event] || []).push(fn);
    },
    removeListener(event, fn) {
      listeners[event] = (listeners[event] || []).filter((f) => f !== fn);
    },
  };
})();
