"""``twin.dashboards``: the Plotly Dash pages, views of a timeline. Installed from
``dashboards/``."""
