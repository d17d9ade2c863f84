pragma circom 2.1.0;

// The logit proof the gateway serves: Logit (logit.circom) with the features hashed, so the proof has
// three public signals whatever F is (Groth16 verifying gas grows ~6.9k per public signal: 429k at
// F = 30 with the features public, ~225k hashed; docs/proofs.md).
//
// Public signals (outputs, snarkjs order): [logit, commitment, inputsHash]
//   logit      = w . x + b (scale 2^56), as in Logit
//   commitment = Poseidon chain over (w, b): the model version's commitment recorded on chain
//   inputsHash = Poseidon chain over x_0 .. x_{F-1} (Commit in logit.circom, fixed point of zk/_fixed.py)
// The features are a private input: a verifier who knows them recomputes inputsHash (InputsHash below,
// a witness-only circuit, no keys) and compares; anyone else learns only the hash.

include "logit.circom";

template ProvenLogit(F, XBITS) {
    signal input x[F];
    signal input w[F];
    signal input b;
    signal output logit;
    signal output commitment;
    signal output inputsHash;

    component inner = Logit(F, XBITS);
    component hx = Commit(F);
    for (var i = 0; i < F; i++) {
        inner.x[i] <== x[i];
        inner.w[i] <== w[i];
        hx.in[i] <== x[i];
    }
    inner.b <== b;
    logit <== inner.logit;
    commitment <== inner.commitment;
    inputsHash <== hx.out;
}

// inputsHash of ProvenLogit from the features alone (for clients; never proven).
template InputsHash(F) {
    signal input x[F];
    signal output inputsHash;
    component hx = Commit(F);
    for (var i = 0; i < F; i++) {
        hx.in[i] <== x[i];
    }
    inputsHash <== hx.out;
}
