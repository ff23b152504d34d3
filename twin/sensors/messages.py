"""What sensors send: one JSON schema per kind of message.

Each kind follows FIWARE's Smart Data Models where one exists, with the same ``type`` and
attribute names, so that a city's existing FIWARE feeds can be pointed at the twin:

=======================  ======================================  =========================
``type``                 what                                    FIWARE model
=======================  ======================================  =========================
``TrafficFlowObserved``  vehicles counted by a detector over an  Transportation /
                         interval, optional mean speed           TrafficFlowObserved
``TravelTimeObserved``   travel time between two cameras (ANPR   (twin's own; none exists)
                         / ETLE pair)
``Vehicle``              a unit's position and status (AVL)      Transportation / Vehicle
``Alert``                an incident report                      Alert
``EmergencyCall``        a call to 110/112/119/113: number,      (twin's own)
                         place, category, caller
``CrowdFlowObserved``    people counted in an area               Transportation /
                                                                 CrowdFlowObserved
``FloodMonitoring``      a water level at a gauge                Environment /
                                                                 FloodMonitoring
=======================  ======================================  =========================

Times are ISO 8601 with their offset. ``twin schema --sensors`` writes the JSON Schemas.
A caller's identity never reaches storage: :func:`pseudonymise` replaces it with a keyed
hash at ingestion.

>>> m = parse({"type": "TrafficFlowObserved", "id": "c1", "refDevice": "det-1",
...            "dateObservedFrom": "2026-12-01T07:00:00+02:00",
...            "dateObservedTo": "2026-12-01T07:05:00+02:00", "intensity": 42})
>>> m.intensity, m.observed_at.isoformat()
(42, '2026-12-01T07:05:00+02:00')
"""

from __future__ import annotations

import hashlib
import hmac
from datetime import datetime
from typing import Annotated, Any, ClassVar, Literal

from pydantic import (
    AwareDatetime,
    BaseModel,
    ConfigDict,
    Field,
    Json,
    TypeAdapter,
    model_validator,
)

from twin.events import INCIDENT_TYPES, EmergencyNumber, IncidentTypeName


class _Message(BaseModel):
    # other attributes (FIWARE's address, dataProvider...) are allowed and kept in the
    # stored payload, not in the model
    model_config = ConfigDict(extra="ignore", frozen=True, populate_by_name=True)

    id: str = Field(min_length=1, max_length=200, description="the message's own id")

    #: The field that stamps the message, and the one naming its registered device (if any).
    time_field: ClassVar[str] = "dateObserved"
    sensor_field: ClassVar[str | None] = None

    @property
    def observed_at(self) -> datetime:
        return getattr(self, self.time_field)

    @property
    def sensor(self) -> str | None:
        """The registered device this message comes from, if any."""
        return getattr(self, self.sensor_field) if self.sensor_field else None


class GeoPoint(BaseModel):
    """A GeoJSON point: coordinates are [longitude, latitude]."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    type: Literal["Point"]
    coordinates: tuple[
        Annotated[float, Field(ge=-180, le=180, description="longitude")],
        Annotated[float, Field(ge=-90, le=90, description="latitude")],
    ]

    @property
    def lat(self) -> float:
        return self.coordinates[1]

    @property
    def lon(self) -> float:
        return self.coordinates[0]


class TrafficFlowObserved(_Message):
    type: Literal["TrafficFlowObserved"]
    refDevice: str = Field(description="the detector's id in the city's sensors file")
    dateObservedFrom: AwareDatetime
    dateObservedTo: AwareDatetime
    intensity: int = Field(ge=0, le=20000, description="vehicles counted in the interval")
    averageVehicleSpeed: float | None = Field(None, ge=0, le=250, description="km/h")
    laneId: int | None = Field(None, ge=0, le=20)

    @model_validator(mode="after")
    def _interval(self) -> TrafficFlowObserved:
        span = (self.dateObservedTo - self.dateObservedFrom).total_seconds()
        if not 0 < span <= 3600:
            raise ValueError(
                f"dateObservedFrom to dateObservedTo must span (0, 1 h], got {span:g} s"
            )
        if self.intensity > 3 * span:  # about 3 vehicles a second per lane group is the ceiling
            raise ValueError(
                f"intensity {self.intensity} in {span:g} s is more than any road carries"
            )
        return self

    time_field: ClassVar[str] = "dateObservedTo"
    sensor_field: ClassVar[str | None] = "refDevice"


class TravelTimeObserved(_Message):
    type: Literal["TravelTimeObserved"]
    refDeviceFrom: str
    refDeviceTo: str
    dateObserved: AwareDatetime
    travelTime: float = Field(
        gt=0, le=6 * 3600, description="seconds, median of the vehicles matched"
    )
    vehicles: int = Field(1, ge=1, le=100000, description="vehicles matched at both cameras")

    time_field: ClassVar[str] = "dateObserved"
    sensor_field: ClassVar[str | None] = "refDeviceFrom"


class Vehicle(_Message):
    """A unit's AVL fix. ``serviceStatus`` is the twin's unit state."""

    type: Literal["Vehicle"]
    dateObserved: AwareDatetime
    location: GeoPoint
    speed: float | None = Field(None, ge=0, le=300, description="km/h")
    serviceStatus: Literal[
        "available",
        "dispatched",
        "en_route",
        "on_scene",
        "transporting",
        "at_hospital",
        "returning",
        "off_duty",
    ]
    vehicleType: str | None = None

    time_field: ClassVar[str] = "dateObserved"


class Alert(_Message):
    """An incident report."""

    type: Literal["Alert"]
    category: Literal["traffic", "security", "health", "fire", "environment", "other"]
    subCategory: str | None = None
    location: GeoPoint
    dateIssued: AwareDatetime
    severity: Literal["informational", "low", "medium", "high", "critical"] = "medium"
    description: str = Field("", max_length=2000)

    time_field: ClassVar[str] = "dateIssued"


class EmergencyCall(_Message):
    type: Literal["EmergencyCall"]
    number: EmergencyNumber
    dateReceived: AwareDatetime
    location: GeoPoint | None = None
    category: Literal[IncidentTypeName, "other"] = "other"
    caller: str | None = Field(
        None, max_length=64, description="replaced by a keyed hash at ingestion"
    )

    time_field: ClassVar[str] = "dateReceived"


class CrowdFlowObserved(_Message):
    type: Literal["CrowdFlowObserved"]
    refDevice: str
    dateObserved: AwareDatetime
    peopleCount: int = Field(ge=0, le=2_000_000)

    time_field: ClassVar[str] = "dateObserved"
    sensor_field: ClassVar[str | None] = "refDevice"


class FloodMonitoring(_Message):
    type: Literal["FloodMonitoring"]
    refDevice: str
    dateObserved: AwareDatetime
    currentLevel: float = Field(ge=-20, le=50, description="metres above the gauge's datum")

    time_field: ClassVar[str] = "dateObserved"
    sensor_field: ClassVar[str | None] = "refDevice"


Message = Annotated[
    TrafficFlowObserved
    | TravelTimeObserved
    | Vehicle
    | Alert
    | EmergencyCall
    | CrowdFlowObserved
    | FloodMonitoring,
    Field(discriminator="type"),
]
KINDS = (
    "TrafficFlowObserved",
    "TravelTimeObserved",
    "Vehicle",
    "Alert",
    "EmergencyCall",
    "CrowdFlowObserved",
    "FloodMonitoring",
)
_ADAPTER: TypeAdapter[Any] = TypeAdapter(Message)
#: Lines of text, each parsed and validated on its own, in one call: a line that is not a
#: message comes back as its text (``left_to_right``: the text only where the message fails).
_LINES: TypeAdapter[Any] = TypeAdapter(
    list[Annotated[Json[Message] | str, Field(union_mode="left_to_right")]]
)


#: The longest message taken, characters: a sensor's message is a few hundred, so this is
#: far past any real one, and bounds what one hostile message costs to read and parse.
MAX_MESSAGE_CHARS = 64 * 1024


class Unreadable(str):
    """A line of a recording that is refused before it is parsed, with why: ``reason`` (a
    quarantine reason) and ``detail``."""

    reason: str
    detail: str

    def __new__(cls, text: str, reason: str, detail: str) -> Unreadable:
        obj = super().__new__(cls, text)
        obj.reason, obj.detail = reason, detail
        return obj


#: FIWARE's Alert categories as the twin's incident types, and back (an incident type
#: without a category of its own is "security").
INCIDENT_OF_CATEGORY = {
    "traffic": "traffic_accident",
    "security": "crime",
    "health": "medical",
    "fire": "fire",
}
CATEGORY_OF_INCIDENT = {
    "crime": "security",
    "public_order": "security",
    "traffic_accident": "traffic",
    "medical": "health",
    "fire": "fire",
}
#: An incident's priority (1 most urgent .. 3) from an Alert's severity, and the severity
#: a priority is sent as: one table both ways, so a run fed through ``twin feed`` and taken
#: back keeps every priority.
PRIORITY_OF_SEVERITY = {"critical": 1, "high": 1, "medium": 2, "low": 3, "informational": 3}
SEVERITY_OF_PRIORITY = {p: s for s, p in reversed(PRIORITY_OF_SEVERITY.items())}


def incident_of(message: Any) -> str:
    """The incident type an Alert or an EmergencyCall reports (crime where it says none)."""
    if message.type == "EmergencyCall":
        return message.category if message.category in INCIDENT_TYPES else "crime"
    if message.subCategory in INCIDENT_TYPES:
        return message.subCategory
    return INCIDENT_OF_CATEGORY.get(message.category, "crime")


def parse(data: Any) -> Any:
    """A message from decoded JSON; raises pydantic's ValidationError."""
    return _ADAPTER.validate_python(data)


def parse_json(text: str | bytes) -> Any:
    """A message straight from its JSON text, parsed and validated in pydantic's compiled
    core (the fast path of ingestion); raises pydantic's ValidationError, whose first error
    is ``json_invalid`` for text that is not JSON."""
    return _ADAPTER.validate_json(text)


def parse_lines(texts: list[str]) -> list[Any]:
    """Messages from lines of JSON text, one per line, validated together in one call of
    pydantic's core (a third faster than a call per line): each is a message, or the line's
    own text where the line is not one (:func:`parse_json` of that text says why).

    >>> ok = ('{"type": "CrowdFlowObserved", "id": "c1", "refDevice": "cam-1", '
    ...       '"dateObserved": "2026-12-01T07:00:00+07:00", "peopleCount": 40}')
    >>> [type(m).__name__ for m in parse_lines([ok, "{not json", ok])]
    ['CrowdFlowObserved', 'str', 'CrowdFlowObserved']
    """
    return _LINES.validate_python(texts)


def json_schemas() -> dict[str, Any]:
    """The JSON Schema of every kind of message, by ``type``."""
    return _ADAPTER.json_schema()


def pseudonymise(caller: str, key: bytes) -> str:
    """A caller's keyed hash (HMAC-SHA256, 16 hex digits): the same caller gives the same
    pseudonym under one key, and nobody without the key can go back."""
    return hmac.new(key, caller.strip().encode("utf-8"), hashlib.sha256).hexdigest()[:16]
