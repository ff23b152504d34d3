"""The scenario's ``community`` section (``twin.agents``): residents, offenders,
Bhabinkamtibmas, patrols and unrest."""

from __future__ import annotations

from typing import Literal

from pydantic import (
    Field,
)

from twin.scenario._base import Duration, _Model

# -- community (twin.agents) --------------------------------------------------------------------


class Patrols(_Model):
    """Patrol units of the community model and their strategy."""

    units: int = Field(4, ge=0, le=500)
    strategy: Literal["random", "beats", "hotspot", "predicted"] = Field(
        "random",
        description="random junctions; fixed beats by sector; the top-k roads by past crime "
        "(11-15 minute stops); or the top-k roads of a forecast",
    )
    hotspots: int = Field(
        5, ge=1, le=200, description="how many roads the hotspot strategies visit"
    )
    forecast: Literal["kde", "sepp"] = Field(
        "kde", description="the predicted strategy's forecast: kernel density or self-exciting"
    )


class Unrest(_Model):
    """Epstein's civil violence rules in each demonstration's crowd."""

    legitimacy: float = Field(
        0.75, ge=0, le=1, description="the regime's legitimacy at trust 0.5; trust moves it"
    )
    crowd: int = Field(300, ge=10, le=20000, description="people in each demonstration")
    police: int = Field(20, ge=0, le=5000, description="police officers in the crowd")
    max_jail_term: int = Field(30, ge=0, le=1000, description="steps a jailed citizen stays out")


class Community(_Model):
    """Residents, offenders, Bhabinkamtibmas and patrols (``twin.agents.community``)."""

    step: Duration = Field(600.0, description="simulated time per community step")
    residents: int = Field(2000, ge=0, le=1_000_000)
    offenders: int = Field(40, ge=0, le=100_000)
    motivation: float = Field(
        0.03,
        ge=0,
        le=1,
        description="mean chance an offender strikes on an unguarded, suitable road",
    )
    patrols: Patrols = Field(default_factory=Patrols)
    bhabinkamtibmas: int = Field(0, ge=0, le=10_000, description="neighbourhood officers")
    trust: float = Field(
        0.5, gt=0, lt=1, description="residents' mean trust in the police at the start, 0 to 1"
    )
    unrest: Unrest | None = Field(
        None, description="civil violence in the crowds of the scenario's demonstrations"
    )
