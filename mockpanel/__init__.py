"""mockpanel: local mock services for backend development and CI, in a terminal control panel."""

__version__ = "0.1.0"
