"""The auth mock as an OpenID Connect / OAuth 2 provider, beside the seed's HS256 API (which stays as it is).

provider.py is the domain (issuers, keys, faults, clock, clients, claims, sessions); http.py the protocol endpoints;
control.py the runtime controls under /__mockpanel/oidc; pages.py the login and signed-out pages.
"""

from .control import control_routes
from .http import routes
from .provider import ALGORITHMS, FAULT_FIELDS, OAuthError, OidcProvider, check_claims, check_faults, issuer_name

__all__ = ["ALGORITHMS", "FAULT_FIELDS", "OAuthError", "OidcProvider", "check_claims", "check_faults", "control_routes", "issuer_name", "routes"]
