"""``twin.agents``: the Mesa community models (residents, offenders, Bhabinkamtibmas,
patrols, unrest) that step on the twin's clock. Installed from ``agents/``."""
