pragma circom 2.1.0;

// Many logits of one model proven together: R rows of F features, w . x + b each (fixed point as in
// logit.circom), with the inputs and the logits hashed so that only three public signals remain and the
// verifying gas is shared by the R rows.
//
// Public signals (outputs): [inputsHash, logitsHash, commitment]
//   inputsHash = Poseidon chain over x[0][0..F-1], x[1][0..F-1], .. (row-major, R * F elements)
//   logitsHash = Poseidon chain over logit[0..R-1] (scale 2^56, field elements)
//   commitment = Poseidon chain over (w, b): the model version's commitment, as in logit.circom
// A client recomputes both hashes from the rows it sent and the logits it got (BatchHashes below, a
// witness-only circuit) and checks them against the proof's signals. Unused rows are zero rows.

include "circomlib/circuits/poseidon.circom";
include "circomlib/circuits/bitify.circom";
include "logit.circom";

template BatchLogit(R, F, XBITS) {
    signal input x[R][F];
    signal input w[F];
    signal input b;
    signal output inputsHash;
    signal output logitsHash;
    signal output commitment;

    component range[R][F];
    signal acc[R][F + 1];
    component hin = Commit(R * F);
    component hout = Commit(R);
    for (var r = 0; r < R; r++) {
        acc[r][0] <== b;
        for (var j = 0; j < F; j++) {
            range[r][j] = SignedRange(XBITS);
            range[r][j].in <== x[r][j];
            acc[r][j + 1] <== acc[r][j] + w[j] * x[r][j];
            hin.in[r * F + j] <== x[r][j];
        }
        hout.in[r] <== acc[r][F];
    }
    inputsHash <== hin.out;
    logitsHash <== hout.out;
    component model = Commit(F + 1);
    for (var j = 0; j < F; j++) {
        model.in[j] <== w[j];
    }
    model.in[F] <== b;
    commitment <== model.out;
}

// The two hashes of BatchLogit from the rows and the claimed logits (for clients; never proven).
template BatchHashes(R, F) {
    signal input x[R][F];
    signal input logit[R];
    signal output inputsHash;
    signal output logitsHash;
    component hin = Commit(R * F);
    component hout = Commit(R);
    for (var r = 0; r < R; r++) {
        for (var j = 0; j < F; j++) {
            hin.in[r * F + j] <== x[r][j];
        }
        hout.in[r] <== logit[r];
    }
    inputsHash <== hin.out;
    logitsHash <== hout.out;
}
