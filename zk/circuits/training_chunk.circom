pragma circom 2.1.0;

// One chunk of a data holder's rows: its partial sums at a published model, added to the holder's
// running sums, which stay private behind a salted commitment; and one link of the hash chain whose last
// value is the holder's committed data root (chunked proof of training, zk/_training.py).
//
// Fixed point, rows and sigmoid exactly as in training.circom (features at 2^16, |x| < 2^(XB-1), w_j at
// 2^32, b at 2^56, eta truncated to 2^-16, 32 cubic pieces). For row i of the chunk:
//   r_i = present_i * (y_i * 2^80 - p_i)                                scale 2^80
// The chunk's sums (never public):
//   n = sum_i present_i, g_0 = sum_i r_i, g_j = sum_i x_ij r_i, S_j = sum_i x_ij^2, M_j = sum_i x_ij
// Running sums, packed (F + 1 field elements, P[0] = n + 2^NB (g_0 + G0OFF), P[1 + j] =
// (g_j + GOFF) + 2^GW S_j + 2^(GW + SW) (M_j + MOFF), widths chunkSlotBits): every slot of one chunk lies
// in [0, 2^(width - KB)) because every x is range checked (-2^(XB-1) <= x < 2^(XB-1)) and |p_i| < 2^81 (the sigmoid's cubic pieces), so after at most 2^KB
// chunks no slot carries into the next and every element stays below 2^253 < the field: the packing is
// the integer sum of the chunks' packings, and unpacks uniquely (zk.unpack_running_sums; the verifier
// refuses chains longer than 2^KB chunks).
//   accIn  = 0 (the fixed start: running sums 0) or Commit(saltIn, Pin)      public input
//   accOut = Commit(saltOut, Pin + pack(chunk sums))                           output
// saltIn and saltOut are fresh per chunk, so opening the last accumulator (its salt and packed totals)
// reveals nothing about earlier ones.
// Public signals, in this order: linkOut, accOut, modelCommitment (outputs), linkIn, accIn (inputs):
//   linkOut      = Commit(linkIn, salt, packed row 0, .., packed row R-1)
//   modelCommitment = Commit(w_0 .. w_{F-1}, b)                        (as in logit.circom)
// Padding rows (present_i = 0) must have all features 0 (checked), so they add nothing to any sum; they are
// part of the link. The chain starts at linkIn = 0; the holder's data root is the last chunk's linkOut.
// The secret salt enters every link, so a public link hides the rows it covers.

include "circomlib/circuits/bitify.circom";
include "logit.circom";
include "training.circom";

// Slot widths of the packed running sums for at most 2^KB chunks of R rows, F features, XB-bit features.
function chunkSlotBits(R, XB, KB) {
    var rb = 0;
    while ((1 << rb) < R) { rb++; }
    return [
        rb + 1 + KB,            // NB: n <= R per chunk
        rb + 82 + KB,           // G0: |g_0| < R 2^81, offset R 2^81
        rb + XB + 81 + KB,      // GW: |g_j| < R 2^(XB-1) 2^81, offset the same
        rb + 2 * XB - 1 + KB,   // SW: 0 <= S_j <= R 2^(2 XB - 2)
        rb + XB + KB            // MW: |M_j| < R 2^(XB-1), offset the same
    ];
}

template TrainingChunk(R, F, XB, KB) {
    signal input x[R][F];
    signal input y[R];
    signal input present[R];
    signal input salt;
    signal input linkIn;
    signal input w[F];
    signal input b;
    signal input accIn;
    signal input saltIn;
    signal input saltOut;
    signal input pin[F + 1];

    signal output linkOut;
    signal output accOut;
    signal output modelCommitment;

    var W[5] = chunkSlotBits(R, XB, KB);
    assert(W[0] + W[1] <= 253);
    assert(W[2] + W[3] + W[4] <= 253);

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
    // The fixed start: accIn = 0 forces the running sums in to 0; otherwise accIn opens to them.
    component start = IsZero();
    start.in <== accIn;
    for (var k = 0; k <= F; k++) {
        pin[k] * start.out === 0;
    }
    component prev = Commit(F + 2);
    prev.in[0] <== saltIn;
    for (var k = 0; k <= F; k++) { prev.in[k + 1] <== pin[k]; }
    (prev.out - accIn) * (1 - start.out) === 0;

    var ROFF = R << 81;
    var XOFFR = R << (XB - 1);
    component next = Commit(F + 2);
    next.in[0] <== saltOut;
    next.in[1] <== pin[0] + nAcc + (gAcc[0] + ROFF) * (1 << W[0]);
    for (var j = 0; j < F; j++) {
        next.in[j + 2] <== pin[j + 1] + (gAcc[j + 1] + XOFFR * (1 << 81)) + sAcc[j] * (1 << W[2])
            + (mAcc[j] + XOFFR) * (1 << (W[2] + W[3]));
    }
    accOut <== next.out;

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
