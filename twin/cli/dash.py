"""``twin dash``: the dashboards on runs or a running live twin."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

from twin._errors import InputError
from twin.cli._app import (
    app,
    console_log,
    out,
)


@app.command()
def dash(
    runs: Annotated[
        list[Path] | None,
        typer.Argument(help="Run folders (runs/NAME) or ensemble folders (twin evaluate) to show."),
    ] = None,
    live: Annotated[
        list[Path] | None,
        typer.Option("--live", help="A running live twin's DuckDB file (repeatable)."),
    ] = None,
    port: Annotated[int, typer.Option("--port", help="Port to serve on.")] = 8050,
    host: Annotated[
        str,
        typer.Option(
            "--host", help="Address to serve on; another than 127.0.0.1 needs users (twin users)."
        ),
    ] = "127.0.0.1",
    users: Annotated[
        Path | None,
        typer.Option(
            "--users",
            help="The users file (or its folder); by default the users.json beside the runs "
            "or the live twin.",
        ),
    ] = None,
    idle_minutes: Annotated[
        float, typer.Option("--idle-minutes", help="Sign a user out after this long idle.")
    ] = 30.0,
    cert: Annotated[
        Path | None, typer.Option("--cert", help="TLS: the server's certificate (PEM).")
    ] = None,
    key: Annotated[
        Path | None, typer.Option("--key", help="TLS: the certificate's private key (PEM).")
    ] = None,
    rules: Annotated[
        Path | None,
        typer.Option(
            "--rules", help="YAML thresholds for aman / waspada / rawan (see twin.kpi.StatusRules)."
        ),
    ] = None,
    lang: Annotated[str, typer.Option("--lang", help="id (Bahasa Indonesia) or en.")] = "id",
    tiles: Annotated[
        str | None,
        typer.Option(
            "--tiles", help="Online: a tile server's URL with {z}/{x}/{y}, under the map."
        ),
    ] = None,
    tiles_attribution: Annotated[
        str,
        typer.Option("--tiles-attribution", help="The credit the tile server's licence asks for."),
    ] = "Tiles © OpenStreetMap contributors",
) -> None:
    """Open the dashboards (K3i command centre) on runs or a running live twin, in a
    browser at http://HOST:PORT, for the users who sign in (``twin users``). With no users
    yet, on 127.0.0.1, it prints a one-time sign-in link instead."""
    from twin import kpi
    from twin.dashboards.app import create_app
    from twin.report import Tiles

    try:
        background = Tiles(tiles, tiles_attribution) if tiles else None
    except ValueError as exc:
        raise InputError(f"--tiles: {exc}") from exc
    from twin.plans.ensemble_folder import is_ensemble, load_ensemble

    runs, live = runs or [], live or []
    if not runs and not live:
        raise InputError("give run folders (twin dash runs/NAME) or --live DB")
    ensembles = [r for r in runs if is_ensemble(r)]
    runs = [r for r in runs if not is_ensemble(r)]
    for ensemble in ensembles:
        load_ensemble(ensemble)  # its problems said here, not in the browser
    for run in runs:
        if not (run / "timeline.parquet").is_file():
            raise InputError(
                f"{run}: not a run folder (no timeline.parquet) nor an ensemble folder; "
                "run `twin run` or `twin evaluate` first"
            )
    status_rules = None
    if rules is not None:
        status_rules = kpi.StatusRules.from_file(rules)
    if lang not in ("id", "en"):
        raise InputError(f"--lang: id or en, not {lang!r}")
    tls = _tls(cert, key)
    store = _users(users, [*runs, *ensembles], live)
    scheme = "https" if tls else "http"
    base = f"{scheme}://{'[' + host + ']' if ':' in host else host}:{port}"
    if store is None and host not in LOOPBACK:
        raise InputError(
            f"--host {host}: serving the dashboards to a network needs users, and there are "
            "none: add them first (twin users add NAME --role duty_officer --at RUN_OR_FOLDER), "
            "or give --users FILE"
        )
    from twin.dashboards.signin import Gate

    def announce(token: str) -> None:
        out.print(
            f"For the next browser, a new one-time link: {base}/?token={token}",
            soft_wrap=True,
            markup=False,
        )

    gate = Gate(
        store,
        secure=tls is not None,
        idle_s=idle_minutes * 60,
        lang=lang,
        announce=None if store is not None else announce,
    )
    app = create_app(
        runs,
        live=live,
        rules=status_rules,
        lang=lang,
        tiles=background,
        ensembles=ensembles,
        gate=gate,
    )
    if store is None:
        intro = "No users yet: open this one-time link to sign in (it works once; Ctrl-C stops):"
        serve(app.server, host, port, tls, intro + f"\n{gate.link(base)}")
    else:
        if tls is None and host not in LOOPBACK:
            out.print(
                "[yellow]Served without TLS: passwords cross the network readable. Give "
                "--cert and --key, or serve behind a TLS proxy.[/yellow]"
            )
        serve(app.server, host, port, tls, f"Users sign in from {store.path}.")


LOOPBACK = ("127.0.0.1", "localhost", "::1")


def _users(given: Path | None, folders: list[Path], live: list[Path]) -> Any:
    """The users who may sign in: ``--users``, or the one users.json beside the runs or the
    live twins; None when there are none who may sign in."""
    from twin.auth.users import FILE_NAME, UserStore

    if given is not None:
        if not given.exists():
            raise InputError(f"--users {given}: no such file or folder")
        store = UserStore(given)
    else:
        found = {
            p.resolve()
            for p in (*folders, *(db.parent for db in live))
            if (p / FILE_NAME).is_file()
        }
        if len(found) > 1:
            raise InputError(
                "these folders each have their own users.json: "
                + ", ".join(str(p) for p in sorted(found))
                + "; choose one with --users"
            )
        if not found:
            return None
        store = UserStore(found.pop())
    if not any(not u.disabled and u.role != "sensor" for u in store.users()):
        return None
    return store


def _tls(cert: Path | None, key: Path | None) -> Any:
    """The TLS context for ``--cert`` and ``--key`` (both or neither), or None."""
    if cert is None and key is None:
        return None
    if cert is None or key is None:
        raise InputError("--cert and --key: give both (the certificate and its private key)")
    import ssl

    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    try:
        context.load_cert_chain(cert, key)
    except (OSError, ssl.SSLError) as exc:
        raise InputError(
            f"--cert {cert} --key {key}: not a certificate and its key ({exc})"
        ) from exc
    return context


def serve(server: Any, host: str, port: int, tls: Any = None, note: str = "") -> None:
    """Serve the dashboards' WSGI app, a thread per request, and say where, once: the
    console shows what the officer needs (the address, how to sign in, then errors), not
    each request or the development server's banner."""
    import logging

    from werkzeug.serving import make_server

    logging.getLogger("werkzeug").setLevel(logging.WARNING)  # no line per HTTP request
    console_log("twin.auth")  # sign-ins, refusals
    try:
        httpd = make_server(host, port, server, threaded=True, ssl_context=tls)
    except OSError as exc:
        raise InputError(f"--port {port}: cannot serve on {host}:{port} ({exc.strerror})") from exc
    scheme = "https" if tls else "http"
    out.print(f"Dashboards on {scheme}://{host}:{port}/ (Ctrl-C stops them)")
    if note:
        out.print(note, soft_wrap=True, markup=False)
    try:
        httpd.serve_forever()
    finally:
        httpd.server_close()
