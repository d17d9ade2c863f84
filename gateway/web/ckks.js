// Private prediction in the page: node-seal (SEAL 4.1 in WebAssembly) encrypts a row with a
// secret key that lives only in this page's memory; the gateway evaluates w·x + b on it and
// answers a ciphertext only that key decrypts.
//
// Wire format (ckks/_framing.py), little-endian:
//   request  "2PMQ" | version 1 | layout 3 (coeff) | param_set u8 | flags 0 | n_rows u32
//            | n_features u32 | n_ciphertexts u32 | lengths u32[] | SEAL ciphertexts
//   response "2PMR" | version 1 | layout 3 | param_set u8 | flags 0 | n_rows u32
//            | n_ciphertexts u32 | lengths u32[] | SEAL ciphertexts
// One seeded, zstd-compressed ciphertext per row. A row z (standardised features) is encoded
// as the polynomial z0 + Σ_k z_k (X^k − X^(N−k)), whose CKKS slot values are real (node-seal's
// encoder takes only real values): slot j holds z0 + 2 Σ_k z_k cos(π m_j k / N), m_j = 3^j mod
// 2N. The gateway multiplies by W(X) = w0 − Σ w_i X^(N−i); coefficient 0 of the product is w·z
// + b, and coefficient 0 of a decrypted polynomial is the mean of its slots' real parts
// (shared/FACTS.md, "CKKS in the browser"; ckks/_packing.py).

const SEAL_URL = "/app/vendor/node-seal/index_throws.js";
const LAYOUT_COEFF = 3;

let sealPromise = null;

/** The node-seal module, loaded once (about 1.3 MB of WebAssembly, served by the gateway). */
export function loadSeal() {
  if (!sealPromise) {
    sealPromise = import(SEAL_URL).then((m) => m.default()).catch((err) => {
      sealPromise = null;
      throw err;
    });
  }
  return sealPromise;
}

/** z = (x − mean) / scale for each row; identity when the subnet states no standardisation. */
export function standardise(rows, std) {
  if (!std) return rows.map((r) => Float64Array.from(r));
  return rows.map((r) => Float64Array.from(r, (v, k) => (v - std.mean[k]) / std.scale[k]));
}

/** Euclidean norm of a row. */
export function norm(row) {
  let s = 0;
  for (const v of row) s += v * v;
  return Math.sqrt(s);
}

function slotExponents(n) {
  const out = new Array(n / 2);
  let m = 1;
  for (let j = 0; j < n / 2; j++) {
    out[j] = m;
    m = (m * 3) % (2 * n);
  }
  return out;
}

/** Real slot values whose CKKS encoding is z0 + Σ z_k (X^k − X^(N−k)). */
export function slotsOfRow(z, n) {
  const exps = slotExponents(n);
  const slots = new Float64Array(n / 2);
  for (let j = 0; j < n / 2; j++) {
    let v = z[0];
    for (let k = 1; k < z.length; k++) v += 2 * z[k] * Math.cos((Math.PI * exps[j] * k) / n);
    slots[j] = v;
  }
  return slots;
}

function frame(header, blobs) {
  const table = 4 * blobs.length;
  const total = header.length + table + blobs.reduce((a, b) => a + b.length, 0);
  const out = new Uint8Array(total);
  out.set(header, 0);
  const view = new DataView(out.buffer);
  let offset = header.length;
  for (const b of blobs) {
    view.setUint32(offset, b.length, true);
    offset += 4;
  }
  for (const b of blobs) {
    out.set(b, offset);
    offset += b.length;
  }
  return out;
}

export function encodeRequest(setId, nFeatures, blobs) {
  const header = new Uint8Array(20);
  header.set([0x32, 0x50, 0x4d, 0x51, 1, LAYOUT_COEFF, setId, 0]); // "2PMQ"
  const view = new DataView(header.buffer);
  view.setUint32(8, blobs.length, true);
  view.setUint32(12, nFeatures, true);
  view.setUint32(16, blobs.length, true);
  return frame(header, blobs);
}

export function parseResponse(bytes, setId) {
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const magic = String.fromCharCode(...bytes.subarray(0, 4));
  if (bytes.length < 16 || magic !== "2PMR" || bytes[4] !== 1) throw new Error("not an encrypted answer");
  if (bytes[5] !== LAYOUT_COEFF || bytes[6] !== setId) throw new Error("an answer for another parameter set");
  const nRows = view.getUint32(8, true);
  const nCts = view.getUint32(12, true);
  if (nCts !== nRows) throw new Error("an answer with the wrong number of ciphertexts");
  let offset = 16 + 4 * nCts;
  const out = [];
  for (let i = 0; i < nCts; i++) {
    const len = view.getUint32(16 + 4 * i, true);
    if (offset + len > bytes.length) throw new Error("a truncated answer");
    out.push(bytes.subarray(offset, offset + len));
    offset += len;
  }
  if (offset !== bytes.length) throw new Error("an answer with trailing bytes");
  return out;
}

/** A secret key for one parameter set (the subnet's `ckks_parameter_sets[name]`), in memory. */
export class SetKeys {
  constructor(seal, set) {
    this.set = set;
    this.n = set.poly_modulus_degree;
    const parms = new seal.EncryptionParameters(seal.SchemeType.ckks);
    parms.setPolyModulusDegree(this.n);
    parms.setCoeffModulus(seal.CoeffModulus.Create(this.n, Int32Array.from(set.coeff_mod_bit_sizes)));
    this.context = new seal.SEALContext(parms, true, seal.SecLevelType.tc128);
    if (!this.context.parametersSet()) throw new Error(`SEAL refuses the ${set.name} parameters`);
    const primes = this.context.keyContextData().parms().coeffModulus();
    for (let i = 0; i < primes.size(); i++) {
      if (primes.get(i).value().toString() !== set.coeff_modulus[i]) {
        throw new Error(`the ${set.name} primes differ from the gateway's`);
      }
    }
    const keygen = new seal.KeyGenerator(this.context);
    this.secretKey = keygen.secretKey();
    const publicKey = keygen.createPublicKey(); // node-seal's Encryptor needs one; never sent
    this.encryptor = new seal.Encryptor(this.context, publicKey, this.secretKey);
    this.decryptor = new seal.Decryptor(this.context, this.secretKey);
    // The KeyGenerator keeps its own copy of the secret key in the WebAssembly heap, where no
    // garbage collector frees it: delete it (and the public key) now, so that forget() leaves
    // no copy of the secret behind after sign-out.
    publicKey.delete();
    keygen.delete();
    this.encoder = new seal.CKKSEncoder(this.context);
    this.seal = seal;
    this.scale = 2 ** set.input_scale_bits;
  }

  /** Free the SEAL objects, the secret key first. */
  forget() {
    for (const o of [this.secretKey, this.encryptor, this.decryptor, this.encoder, this.context]) {
      if (o && !o.isDeleted()) o.delete();
    }
  }

  /** One standardised row -> seeded, zstd ciphertext bytes (SEAL 4.1). */
  encryptRow(z) {
    const seal = this.seal;
    const plain = new seal.Plaintext();
    this.encoder.encode(slotsOfRow(z, this.n), this.scale, plain);
    const ct = this.encryptor.encryptSymmetricSerializable(plain);
    const bytes = Uint8Array.from(ct.saveToArray(seal.ComprModeType.zstd));
    ct.delete();
    plain.delete();
    return bytes;
  }

  /** Standardised rows -> request body. */
  encrypt(zRows) {
    const blobs = zRows.map((z) => this.encryptRow(z));
    return encodeRequest(this.set.set_id, zRows[0].length, blobs);
  }

  /** Response body -> logits (coefficient 0 of each decrypted polynomial). */
  decrypt(responseBytes) {
    const seal = this.seal;
    return parseResponse(responseBytes, this.set.set_id).map((blob) => {
      const ct = new seal.Ciphertext();
      ct.loadFromArray(this.context, blob);
      const plain = new seal.Plaintext();
      this.decryptor.decrypt(ct, plain);
      const slots = this.encoder.decodeFloat64(plain);
      let sum = 0;
      for (const v of slots) sum += v;
      ct.delete();
      plain.delete();
      return sum / slots.length;
    });
  }
}

/** SEAL's errors come as WebAssembly.Exception whose message is [type, text]. */
export function sealMessage(err) {
  const m = err && err.message;
  if (Array.isArray(m)) return m.join(": ");
  return String(m || err);
}
