"""Pieces shared by pages: an exercise's inbox and orders, as the live exercise page and the
replay page both show them. (A page module cannot import another: Dash loads each page
once, by its own name.)"""

from __future__ import annotations

from typing import Any

from dash import html


def inbox_cards(items: list[dict[str, Any]], words: dict[str, str]) -> Any:
    """The injects a team received, newest first, each with the order it expects and
    whether it was answered or missed (the replay page shows them too)."""
    cards = []
    for i in items:
        expected = ""
        if i["expected"]:
            verdict = (
                words["ex_answered"]
                if i["answered_t"] is not None
                else words["ex_missed"]
                if i["missed_t"] is not None
                else words["ex_within"].format(minutes=f"{i['due_s'] / 60:g}")
            )
            expected = f"{words['ex_expected']}: {words['order_' + i['expected']]} ({verdict})"
        cards.append(
            html.Div(
                [
                    html.B(f"{i['clock']} · {i['title']}"),
                    html.Div(f"{words['ex_from']}: {i['sender']} → {i['team']}"),
                    html.Div(i["text"] or ""),
                    html.Div(expected, className="expected") if expected else None,
                ],
                className="inject",
                id=f"inject-{i['inject']}",
            )
        )
    return cards or html.P("–")


def orders_table(
    items: list[dict[str, Any]], words: dict[str, str], *, table_id: str = "ex-orders-table"
) -> Any:
    """The orders given, newest first, with who gave them and whether the twin refused."""
    head = html.Tr(
        [html.Th(words[k]) for k in ("time", "ex_order", "ex_unit", "ex_incident", "ex_by")]
        + [html.Th("")]
    )
    rows = [
        html.Tr(
            [
                html.Td(o["clock"]),
                html.Td(f"{o['team']}: {words['order_' + o['order']]}"),
                html.Td(o["unit"] or o["sector"] or o["to_team"] or ""),
                html.Td(o["incident"] or o["text"] or ""),
                html.Td(o["user"]),
                html.Td(
                    words["ex_refused"].format(why=o["refused"])
                    if o["refused"]
                    else words["ex_done"],
                    className="refused" if o["refused"] else "",
                ),
            ]
        )
        for o in items
    ]
    return html.Table([head, *rows], className="table", id=table_id)
