// Reads {"types": [...], "values": [[...], ...]} on stdin and prints the root and every proof that
// OpenZeppelin's @openzeppelin/merkle-tree StandardMerkleTree computes, as JSON. Used by the tests to
// check that contracts/merkle.py builds the very same trees.
import { StandardMerkleTree } from "@openzeppelin/merkle-tree";

let input = "";
for await (const chunk of process.stdin) input += chunk;
const { types, values } = JSON.parse(input);
const tree = StandardMerkleTree.of(values, types);
const proofs = values.map((_, i) => ({ leaf: tree.leafHash(values[i]), proof: tree.getProof(i) }));
console.log(JSON.stringify({ root: tree.root, proofs }));
