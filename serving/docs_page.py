"""BentoML's Swagger page, served at ``/docs`` because ``/`` is our index.

The page loads ``./docs.json`` and ``./static_content/...``, both of which
BentoML keeps serving at the root.
"""

from __future__ import annotations

from pathlib import Path

import _bentoml_impl.server as bentoml_server

OPENAPI_PAGE = Path(bentoml_server.__file__).parent / "main-openapi.html"
