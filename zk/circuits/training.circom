pragma circom 2.1.0;

// A data holder's local sums at a published model, computed on the rows it committed to before training.
//
// Fixed point (see zk/_training.py): a feature is x = round(value * 2^16), |x| < 2^(XB-1) (range-checked);
// the model's parameters are the logit circuit's (w_j at 2^32, b at 2^56), committed by the same Poseidon
// chain, so `modelCommitment` equals the version's commitment in SubnetRegistry. For row i:
//   eta_i   = (2^8 * sum_j w_j x_ij + b) / 2^56                        exact, scale 2^56
//   T_i     = floor(eta_i * 2^16)                                      truncated, scale 2^16
//   p_i     = piecewise cubic sigmoid of T_i clamped to [-16, 16)      (sigmoid_table.circom), scale 2^80
//   r_i     = present_i * (y_i * 2^80 - p_i)                           scale 2^80
// Outputs (public signals, in this order):
//   n            = sum_i present_i                                     row count
//   grad[0]      = sum_i r_i                                           d loglik / d intercept, scale 2^80
//   grad[1 + j]  = sum_i x_ij r_i                                      d loglik / d w_j, scale 2^96
//   sumsq[j]     = sum_i present_i x_ij^2                              scale 2^32 (sets the tolerance)
//   dataRoot     = Poseidon chain over (salt, packed row 0, .., packed row N-1)
//   modelCommitment = Poseidon chain over (w_0 .. w_{F-1}, b)        (as in logit.circom)
// Rows with present_i = 0 are padding: they count nowhere but are part of the commitment. A packed row
// holds y_i, present_i and up to 6 features of XB bits each (offset to be non-negative) per field element,
// so the packing is injective because every piece is range-checked.

include "circomlib/circuits/poseidon.circom";
include "circomlib/circuits/bitify.circom";
include "circomlib/circuits/comparators.circom";
include "logit.circom";
include "sigmoid_table.circom";

// p = sigmoid(T / 2^16) at scale 2^80, T a signed integer below 2^70 in magnitude, clamped to [-16, 16).
template PiecewiseSigmoid() {
    signal input T;
    signal output p;
    var OFF = 1 << 71;
    // V = T + 2^20 lies in [0, 2^21) exactly when T / 2^16 lies in [-16, 16).
    component bits = Num2Bits(72);
    bits.in <== T + (1 << 20) + OFF;
    var hs = 0;
    for (var k = 21; k < 71; k++) {
        hs += bits.out[k];
    }
    component highZero = IsZero();
    highZero.in <== hs;
    signal over <== bits.out[71] * (1 - highZero.out); // V >= 2^21
    signal neg <== 1 - bits.out[71];                    // V < 0
    signal inRange <== 1 - neg - over;
    // segment bits (5) and the offset u in the segment (16 bits), clamped: 0 below, all ones above
    signal s[5];
    for (var m = 0; m < 5; m++) {
        s[m] <== inRange * bits.out[16 + m] + over;
    }
    var low = 0;
    for (var k = 0; k < 16; k++) {
        low += bits.out[k] * (1 << k);
    }
    signal u <== inRange * low + over * ((1 << 16) - 1);
    // Coefficients of the segment: the multilinear extension of the table over the 5 segment bits.
    signal prod[32];
    prod[0] <== 1;
    for (var mask = 1; mask < 32; mask++) {
        var top = 0;
        for (var m = 0; m < 5; m++) {
            if (((mask >> m) & 1) == 1) {
                top = m;
            }
        }
        var rest = mask - (1 << top);
        if (rest == 0) {
            prod[mask] <== s[top];
        } else {
            prod[mask] <== prod[rest] * s[top];
        }
    }
    var table[4][32] = sigmoidTable();
    signal c[4];
    for (var k = 0; k < 4; k++) {
        var lin = 0;
        for (var mask = 0; mask < 32; mask++) {
            // Moebius coefficient: sum over sub-masks of mask with alternating signs
            var coef = 0;
            for (var sub = 0; sub < 32; sub++) {
                if ((sub & mask) == sub) {
                    var diff = 0;
                    for (var m = 0; m < 5; m++) {
                        if ((((mask ^ sub) >> m) & 1) == 1) {
                            diff += 1;
                        }
                    }
                    if (diff % 2 == 0) {
                        coef += table[k][sub];
                    } else {
                        coef -= table[k][sub];
                    }
                }
            }
            lin += coef * prod[mask];
        }
        c[k] <== lin;
    }
    signal u2 <== u * u;
    signal u3 <== u2 * u;
    signal t1 <== c[1] * u;
    signal t2 <== c[2] * u2;
    signal t3 <== c[3] * u3;
    // (a0 + a1 t + a2 t^2 + a3 t^3) * 2^80 with t = u / 2^16 and a_k = c_k / 2^32
    p <== c[0] * (1 << 48) + t1 * (1 << 32) + t2 * (1 << 16) + t3;
}

// N rows (padded), F features, XB: signed bit width of every fixed-point feature.
template TrainingSums(N, F, XB) {
    signal input x[N][F];
    signal input y[N];
    signal input present[N];
    signal input salt;
    signal input w[F];
    signal input b;

    signal output n;
    signal output grad[F + 1];
    signal output sumsq[F];
    signal output dataRoot;
    signal output modelCommitment;

    var PER = 6;                                  // features per packed field element
    var CHUNKS = (F + PER - 1) \ PER;
    var XOFF = 1 << (XB - 1);

    component xr[N][F];
    component sig[N];
    signal wx[N][F];
    signal eta[N];
    signal tq[N];
    signal rem[N];
    component remBits[N];
    signal r[N];
    signal xres[N][F];
    signal xx[N][F];
    signal xxp[N][F];
    signal packed[N][CHUNKS];

    var nAcc = 0;
    var gAcc[F + 1];
    var sAcc[F];
    for (var j = 0; j <= F; j++) { gAcc[j] = 0; }
    for (var j = 0; j < F; j++) { sAcc[j] = 0; }

    for (var i = 0; i < N; i++) {
        y[i] * (y[i] - 1) === 0;
        present[i] * (present[i] - 1) === 0;
        var e = b;
        for (var j = 0; j < F; j++) {
            xr[i][j] = Num2Bits(XB);
            xr[i][j].in <== x[i][j] + XOFF;
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
            xxp[i][j] <== xx[i][j] * present[i];
            sAcc[j] += xxp[i][j];
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

    component root = Commit(1 + N * CHUNKS);
    root.in[0] <== salt;
    for (var i = 0; i < N; i++) {
        for (var ch = 0; ch < CHUNKS; ch++) {
            root.in[1 + i * CHUNKS + ch] <== packed[i][ch];
        }
    }
    dataRoot <== root.out;

    component model = Commit(F + 1);
    for (var j = 0; j < F; j++) { model.in[j] <== w[j]; }
    model.in[F] <== b;
    modelCommitment <== model.out;
}
