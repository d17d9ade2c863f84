"""A data holder that over-claims its row count: a fault injected into one SuperNode.

A test puts this directory first on PYTHONPATH of one SuperNode's processes and sets
TWOPM_TEST_EXTRA_ROWS; the node then reports that many more rows in the clear than it
puts into the securely summed vector (what a holder would do to grab a larger share).
"""

import os

_extra = int(os.environ.get("TWOPM_TEST_EXTRA_ROWS", "0"))
if _extra:
    from trainer import client_app

    _honest_fit = client_app.NewtonClient.fit

    def _fit(self, parameters, config):  # type: ignore[no-untyped-def]
        vector, num_examples, metrics = _honest_fit(self, parameters, config)
        metrics["n_rows"] += _extra
        return vector, num_examples, metrics

    client_app.NewtonClient.fit = _fit  # type: ignore[method-assign]
