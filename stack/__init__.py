"""The local 2PM network: ``twopm up`` starts every part, ``twopm demo`` tours it as a wallet user.

This package sits above the others: it starts anvil, deploys the contracts, runs the signer, the
federated training, the publication and the gateway as child processes, and stops all of them on exit.
"""
