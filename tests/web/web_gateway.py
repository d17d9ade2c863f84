"""Run the gateway (which serves the web page) on a given port: ``python tests/web/web_gateway.py PORT``.

Settings come from ``TWOPM_GATEWAY_*``.
"""

from __future__ import annotations

import sys

import uvicorn

from gateway import GatewaySettings, create_app


def main() -> None:
    port = int(sys.argv[1])
    settings = GatewaySettings.from_env()
    app = create_app(settings)  # the default app serves the page
    uvicorn.run(app, host="127.0.0.1", port=port, log_level="warning")


if __name__ == "__main__":
    main()
