// Compiles contracts/src with the pinned npm `solc` (solc-js, offline) and writes one artifact per
// deployable contract to contracts/artifacts/<Name>.json (ABI, bytecode, compiler settings, source hash).
//
//   node contracts/build.mjs           write the artifacts
//   node contracts/build.mjs --check   compile and exit 1 if any committed artifact differs
//   node contracts/build.mjs --source FILE.sol --out DIR
//                                      compile one file (a verifier made by `python -m zk ceremony`)
//                                      with the same settings into DIR/<Name>.json
//
// EVM target: Shanghai, the fork Scroll executes (no Cancun opcodes such as TSTORE, MCOPY, BLOBHASH).
import { createHash } from "node:crypto";
import { existsSync, mkdirSync, readdirSync, readFileSync, writeFileSync } from "node:fs";
import { dirname, join, relative, sep } from "node:path";
import { fileURLToPath } from "node:url";
import { createRequire } from "node:module";

const require = createRequire(import.meta.url);
const solc = require("solc");

const here = dirname(fileURLToPath(import.meta.url));
const root = join(here, "..");
const srcDir = join(here, "src");
const check = process.argv.includes("--check");
function option(name) {
  const i = process.argv.indexOf(name);
  return i >= 0 ? process.argv[i + 1] : undefined;
}
const oneSource = option("--source");
const outDir = oneSource ? option("--out") : join(here, "artifacts");
if (oneSource && !outDir) {
  console.error("--source needs --out DIR");
  process.exit(2);
}

const SETTINGS = {
  evmVersion: "shanghai",
  viaIR: true,
  optimizer: { enabled: true, runs: 200 },
  metadata: { bytecodeHash: "none" },
  outputSelection: { "*": { "*": ["abi", "evm.bytecode.object", "evm.deployedBytecode.object"] } },
};

function walk(dir) {
  return readdirSync(dir, { withFileTypes: true }).flatMap((entry) => {
    const path = join(dir, entry.name);
    if (entry.isDirectory()) return walk(path);
    return entry.name.endsWith(".sol") ? [path] : [];
  });
}

const sources = {};
if (oneSource) {
  sources["contracts/src/zk/" + oneSource.split(sep).pop()] = { content: readFileSync(oneSource, "utf8") };
} else {
  for (const file of walk(srcDir).sort()) {
    sources[relative(root, file).split(sep).join("/")] = { content: readFileSync(file, "utf8") };
  }
}

const resolved = {};
function findImports(path) {
  const candidates = [join(root, "node_modules", path), join(root, path)];
  for (const candidate of candidates) {
    if (existsSync(candidate)) {
      const content = readFileSync(candidate, "utf8");
      resolved[path] = content;
      return { contents: content };
    }
  }
  return { error: `File not found: ${path}` };
}

const input = { language: "Solidity", sources, settings: SETTINGS };
const output = JSON.parse(solc.compile(JSON.stringify(input), { import: findImports }));
const errors = (output.errors || []).filter((e) => e.severity === "error");
for (const e of output.errors || []) console.error(e.formattedMessage);
if (errors.length) process.exit(1);

// One hash over every source the compiler read (ours and OpenZeppelin's) plus the settings, so an artifact
// records exactly what it was built from.
const hash = createHash("sha256");
const allSources = { ...Object.fromEntries(Object.entries(sources).map(([k, v]) => [k, v.content])), ...resolved };
for (const name of Object.keys(allSources).sort()) hash.update(name + "\0" + allSources[name] + "\0");
hash.update(JSON.stringify(SETTINGS));
const sourceHash = "0x" + hash.digest("hex");

if (!check) mkdirSync(outDir, { recursive: true });
let mismatches = 0;
let written = 0;
for (const [sourceName, contracts] of Object.entries(output.contracts)) {
  if (!sourceName.startsWith("contracts/src/")) continue;
  for (const [contractName, out] of Object.entries(contracts)) {
    const bytecode = out.evm.bytecode.object;
    if (!bytecode) continue; // interfaces and abstract contracts
    const artifact = {
      contractName,
      sourceName,
      abi: out.abi,
      bytecode: "0x" + bytecode,
      deployedBytecode: "0x" + out.evm.deployedBytecode.object,
      compiler: { version: solc.version(), settings: { ...SETTINGS, outputSelection: undefined } },
      sourceHash,
    };
    const text = JSON.stringify(artifact, null, 2) + "\n";
    const path = join(outDir, `${contractName}.json`);
    if (check) {
      const current = existsSync(path) ? readFileSync(path, "utf8") : "";
      if (current !== text) {
        console.error(`artifact out of date: ${relative(root, path)}`);
        mismatches += 1;
      }
    } else {
      writeFileSync(path, text);
      written += 1;
    }
  }
}
if (check) {
  if (mismatches) {
    console.error(`${mismatches} artifact(s) differ from contracts/src; run: npm run build:contracts`);
    process.exit(1);
  }
  console.log("artifacts match sources");
} else {
  console.log(`wrote ${written} artifacts to ${relative(root, outDir)} (solc ${solc.version()})`);
}
