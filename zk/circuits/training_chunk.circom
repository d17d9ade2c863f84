pragma circom 2.1.0;

// One chunk of a data holder's rows: its partial sums at a published model, and one link of the hash chain
// whose last value is the holder's committed data root (chunked proof of training, zk/_training.py).
//
// Fixed point, rows and sigmoid exactly as in training.circom (features at 2^16, |x| < 2^(XB-1), w_j at
// 2^32, b at 2^56, eta truncated to 2^-16, 32 cubic pieces). For row i of the chunk:
//   r_i = present_i * (y_i * 2^80 - p_i)                                scale 2^80
// Outputs (public signals, in this order; then the public input linkIn):
//   n            = sum_i present_i                                      real rows of the chunk
//   grad[0]      = sum_i r_i                                            scale 2^80
//   grad[1 + j]  = sum_i x_ij r_i                                       scale 2^96
//   sumsq[j]     = sum_i x_ij^2                                         scale 2^32
//   sumx[j]      = sum_i x_ij                                           scale 2^16
//   linkOut      = Commit(linkIn, salt, packed row 0, .., packed row R-1)
//   modelCommitment = Commit(w_0 .. w_{F-1}, b)                        (as in logit.circom)
// Padding rows (present_i = 0) must have all features 0 (checked), so they add nothing to any sum; they are
// part of the link. The chain starts at linkIn = 0; the holder's data root is the last chunk's linkOut.
// The secret salt enters every link, so a public link hides the rows it covers.

include "circomlib/circuits/bitify.circom";
include "logit.circom";
include "training.circom";

template TrainingChunk(R, F, XB) {
    signal input x[R][F];
    signal input y[R];
    signal input present[R];
    signal input salt;
    signal input linkIn;
    signal input w[F];
    signal input b;

    signal output n;
    signal output grad[F + 1];
    signal output sumsq[F];
    signal output sumx[F];
    signal output linkOut;
    signal output modelCommitment;

    var PER = 6;                                  // features per packed field element
    var CHUNKS = (F + PER - 1) \ PER;
    var XOFF = 1 << (XB - 1);

    component xr[R][F];
    component sig[R];
    signal wx[R][F];
    signal eta[R];
    signal tq[R];
    signal rem[R];
    component remBits[R];
    signal r[R];
    signal xres[R][F];
    signal xx[R][F];
    signal packed[R][CHUNKS];

    var nAcc = 0;
    var gAcc[F + 1];
    var sAcc[F];
    var mAcc[F];
    for (var j = 0; j <= F; j++) { gAcc[j] = 0; }
    for (var j = 0; j < F; j++) { sAcc[j] = 0; mAcc[j] = 0; }

    for (var i = 0; i < R; i++) {
        y[i] * (y[i] - 1) === 0;
        present[i] * (present[i] - 1) === 0;
        var e = b;
        for (var j = 0; j < F; j++) {
            xr[i][j] = Num2Bits(XB);
            xr[i][j].in <== x[i][j] + XOFF;
            x[i][j] * (1 - present[i]) === 0;
            wx[i][j] <== w[j] * x[i][j];
            e += 256 * wx[i][j];
        }
        eta[i] <== e;
        // eta = tq * 2^40 + rem, 0 <= rem < 2^40 (signed floor division; |eta| < 2^111)
        var shifted = eta[i] + (1 << 111);
        tq[i] <-- (shifted \ (1 << 40)) - (1 << 71);
        rem[i] <-- shifted % (1 << 40);
        remBits[i] = Num2Bits(40);
        remBits[i].in <== rem[i];
        eta[i] === tq[i] * (1 << 40) + rem[i];
        sig[i] = PiecewiseSigmoid();
        sig[i].T <== tq[i];
        r[i] <== present[i] * (y[i] * (1 << 80) - sig[i].p);
        nAcc += present[i];
        gAcc[0] += r[i];
        for (var j = 0; j < F; j++) {
            xres[i][j] <== x[i][j] * r[i];
            gAcc[j + 1] += xres[i][j];
            xx[i][j] <== x[i][j] * x[i][j];
            sAcc[j] += xx[i][j];
            mAcc[j] += x[i][j];
        }
        for (var ch = 0; ch < CHUNKS; ch++) {
            var acc = 0;
            var shift = 0;
            if (ch == 0) {
                acc = y[i] + 2 * present[i];
                shift = 2;
            }
            for (var j = ch * PER; j < F && j < (ch + 1) * PER; j++) {
                acc += (x[i][j] + XOFF) * (1 << shift);
                shift += XB;
            }
            packed[i][ch] <== acc;
        }
    }
    n <== nAcc;
    for (var j = 0; j <= F; j++) { grad[j] <== gAcc[j]; }
    for (var j = 0; j < F; j++) { sumsq[j] <== sAcc[j]; }
    for (var j = 0; j < F; j++) { sumx[j] <== mAcc[j]; }

    component link = Commit(2 + R * CHUNKS);
    link.in[0] <== linkIn;
    link.in[1] <== salt;
    for (var i = 0; i < R; i++) {
        for (var ch = 0; ch < CHUNKS; ch++) {
            link.in[2 + i * CHUNKS + ch] <== packed[i][ch];
        }
    }
    linkOut <== link.out;

    component model = Commit(F + 1);
    for (var j = 0; j < F; j++) { model.in[j] <== w[j]; }
    model.in[F] <== b;
    modelCommitment <== model.out;
}
