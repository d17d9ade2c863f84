"""Run the gateway with the web page mounted: ``python tests/web/web_gateway.py PORT``.

Settings come from ``TWOPM_GATEWAY_*``. Once ``gateway.app`` mounts the page itself (the
routes would clash), the app is built without adding them again.
"""

from __future__ import annotations

import sys

import uvicorn
from litestar.exceptions import ImproperlyConfiguredException

from gateway import GatewaySettings, create_app
from gateway._web import web_route_handlers


def main() -> None:
    port = int(sys.argv[1])
    settings = GatewaySettings.from_env()
    try:
        app = create_app(settings, extra_route_handlers=web_route_handlers())
    except ImproperlyConfiguredException:  # gateway.app mounts the page already
        app = create_app(settings)
    uvicorn.run(app, host="127.0.0.1", port=port, log_level="warning")


if __name__ == "__main__":
    main()
