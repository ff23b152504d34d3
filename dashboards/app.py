"""The Dash app: ``create_app(runs)`` makes it, ``twin dash RUN ...`` serves it.

Pages (``use_pages``): the K3i command centre (``/``), the unit board, the contingency
page, an exercise's page and its replay, and the service hall's queue display
(``/antrian``) and planner's view (``/layanan``). Everything a page shows comes from
the runs' timelines through ``twin.kpi`` queries, and every figure is built in
``twin.report``; the callbacks only pass the page's controls to them. The app needs no
internet: its map is the twin's own roads and sectors, and its style sheet is served from
``assets/``.

Every request passes the sign-in gate first (:mod:`twin.dashboards.signin`); the header
names the signed-in user and signs them out. ``assets/signin.js`` sends the session's CSRF
token with every update and, when a session has ended, goes to the sign-in page.

``assets/plotly-basic.min.js`` is plotly.js's basic bundle (scatter, bar and pie; MIT
licence, the same release as the plotly package's), which Dash then uses instead of the
full plotly.js: a quarter of the size, it halves a page's first render (measured: 2.2 s
to 1.0 s for a page with one graph). The dashboards' figures use only those traces.
"""

from __future__ import annotations

from importlib import resources
from pathlib import Path
from typing import Any

import dash
from dash import Input, Output, dcc, html

from twin.dashboards import orders, state
from twin.dashboards.data import Runs
from twin.dashboards.i18n import LANGUAGES, text
from twin.dashboards.signin import Gate, current_user


def create_app(
    runs: list[Path],
    *,
    live: list[Path] | None = None,
    rules: Any = None,
    lang: str = "id",
    tiles: Any = None,
    ensembles: list[Path] | None = None,
    gate: Gate | None = None,
) -> dash.Dash:
    """A Dash app over these run folders and live twins (their DuckDB files), see the
        module docstring; ``tiles`` (a :class:`twin.report.Tiles`) puts a tile server's map
        under the K3i map, for use online; ``ensembles`` are ensemble folders (``twin
        evaluate``), whose plans the contingency page compares with their intervals; ``gate``
    lets people in (by default one with no users: only its one-time link signs in)."""
    if not runs and not live and not ensembles:
        raise ValueError("give at least one run folder, ensemble folder or live twin")
    shown = Runs(runs, rules, live=live, ensembles=ensembles)
    here = resources.files("twin.dashboards")  # package data: the pages and the assets
    app = dash.Dash(
        __name__,
        use_pages=True,
        pages_folder=str(here / "pages"),
        assets_folder=str(here / "assets"),
        title="smart-policing-twin",
        suppress_callback_exceptions=True,
        serve_locally=True,
    )
    app.server.config[state.KEY] = shown
    app.server.config[state.TILES] = tiles
    (gate or Gate(lang=lang)).install(app)
    orders.install(app, shown)  # the exercise's order API
    # the exercise's page is in the menu where an exercise runs, its replay where one ran
    # the service hall's two pages where a run has a hall
    halls = not shown.halls()
    hidden = {
        "exercise": shown.exercise() is None,
        "replay": not shown.replays(),
        "hall": halls,
        "service": halls,
    }
    menu = [page for page in dash.page_registry.values() if not hidden.get(_nav_key(page))]
    app.layout = lambda: _layout(lang, menu)
    keys = [_nav_key(page) for page in menu]

    @app.callback(
        *(Output(f"nav-{k}", "children") for k in keys),
        Output("who", "children"),
        Output("signout", "children"),
        Input("lang", "value"),
    )
    def _menu(chosen: str) -> tuple[str, ...]:
        words = text(chosen)
        session = current_user()
        who = ""
        if session is not None:
            role = words.get(f"role_{session.role}", session.role)
            role += f" {session.team}" if session.team else ""
            who = words["signed_in_as"].format(user=session.user, role=role)
        return (*(words.get(f"nav_{k}", k) for k in keys), who, words["signout"])

    return app


def _layout(lang: str, menu: list[dict[str, Any]]) -> html.Div:
    """The page frame, drawn for each visitor: the menu, who is signed in, the language."""
    session = current_user()
    return html.Div(
        [
            html.Header(
                [
                    html.Nav(
                        [
                            dcc.Link(
                                page["name"],
                                href=page["relative_path"],
                                id=f"nav-{_nav_key(page)}",
                                className="nav-link",
                            )
                            for page in menu
                        ],
                        className="nav",
                    ),
                    # the officer's language is kept in the browser: a page opened by its
                    # address, or reloaded, stays in it
                    dcc.RadioItems(
                        id="lang",
                        value=lang,
                        inline=True,
                        className="lang",
                        options=[
                            {"label": name, "value": code} for code, name in LANGUAGES.items()
                        ],
                        persistence=True,
                        persistence_type="local",
                    ),
                    html.Form(
                        [
                            html.Span(id="who", className="who"),
                            # the sign-out form carries the session's CSRF token
                            dcc.Input(
                                type="hidden",
                                name="csrf",
                                value=session.csrf if session else "",
                            ),
                            html.Button(id="signout", type="submit", className="signout"),
                        ],
                        method="POST",
                        action="/signout",
                        className="account",
                    ),
                ],
                className="top",
            ),
            dash.page_container,
        ]
    )


def _nav_key(page: dict[str, Any]) -> str:
    """A page's key in the menu: the last part of its module's name (``k3i``, ``units``)."""
    return str(page["module"]).rsplit(".", 1)[-1]
