"""mockpanel: local mock services for backend development and CI, in a terminal control panel."""

__version__ = "0.1.0"

import warnings as _warnings

# The seeds' development secrets are shorter than RFC 7518 recommends; a mock uses them on purpose (and announces them).
_warnings.filterwarnings("ignore", message=r"The HMAC key is \d+ bytes long")
