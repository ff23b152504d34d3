"""The dashboard pages, one module each; Dash finds them by their ``register_page``."""
