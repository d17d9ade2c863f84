pragma circom 2.1.0;

// The logit of a logistic-regression model, w . x + b, in fixed point, with the parameters committed.
//
// Fixed point (see zk/_fixed.py): x_i = round(feature_i * 2^24), w_i = round(coef_i * 2^32),
// b = round(intercept * 2^56); the logit comes out at scale 2^56. Negative values are field
// elements p - |v| (BN254 scalar field).
//
// Public signals, in snarkjs order (outputs first, then public inputs):
//   [logit, commitment, x_0 .. x_{F-1}]
// `commitment` is a Poseidon chain over (w_0 .. w_{F-1}, b) (see Commit below): the model version's
// `model_commitment` recorded on chain. The weights are a private input, so one trusted setup serves
// every model version of the same feature count F.

include "circomlib/circuits/poseidon.circom";
include "circomlib/circuits/bitify.circom";

// Asserts -2^(n-1) <= in < 2^(n-1) for `in` read as a signed integer (the field element p - |v| for a
// negative v): in + 2^(n-1) must fit in n bits. Without it a product or sum could wrap around the field
// and the integer meaning of the logit would be lost.
template SignedRange(n) {
    signal input in;
    component bits = Num2Bits(n);
    bits.in <== in + (1 << (n - 1));
}

// Poseidon chain over n field elements: h = Poseidon(e_0 .. e_15), then h = Poseidon(h, next <= 15).
// circomlib's Poseidon takes at most 16 inputs. Mirrors zk/js/commit (computed by the same circuit).
template Commit(n) {
    signal input in[n];
    signal output out;
    var first = n < 16 ? n : 16;
    var rounds = 1;
    var rest = n - first;
    while (rest > 0) {
        rounds += 1;
        rest -= rest < 15 ? rest : 15;
    }
    component h[rounds];
    h[0] = Poseidon(first);
    for (var i = 0; i < first; i++) {
        h[0].inputs[i] <== in[i];
    }
    var at = first;
    for (var r = 1; r < rounds; r++) {
        var take = (n - at) < 15 ? (n - at) : 15;
        h[r] = Poseidon(take + 1);
        h[r].inputs[0] <== h[r - 1].out;
        for (var i = 0; i < take; i++) {
            h[r].inputs[i + 1] <== in[at + i];
        }
        at += take;
    }
    out <== h[rounds - 1].out;
}

// F features; XBITS: signed bit width every x_i must fit (the fixed-point range of the inputs).
template Logit(F, XBITS) {
    signal input x[F];
    signal input w[F];
    signal input b;
    signal output logit;
    signal output commitment;

    component range[F];
    signal acc[F + 1];
    acc[0] <== b;
    for (var i = 0; i < F; i++) {
        range[i] = SignedRange(XBITS);
        range[i].in <== x[i];
        acc[i + 1] <== acc[i] + w[i] * x[i];
    }
    logit <== acc[F];

    component commit = Commit(F + 1);
    for (var i = 0; i < F; i++) {
        commit.in[i] <== w[i];
    }
    commit.in[F] <== b;
    commitment <== commit.out;
}
