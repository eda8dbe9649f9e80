"""The panel's panes, one module each (the control panel issue fills this package)."""
