"""The one-gate public service hall (SKCK, driving licences, vehicle registration, reports,
information): a SimPy model of its counters, staff and visitors, on the run's one clock.

- :mod:`twin.service.model`: the :class:`ServiceHall` component;
- the scenario's ``service`` section: :mod:`twin.scenario.service`;
- its KPIs: :func:`twin.kpi.service_summary`.
"""

from twin.service.model import ServiceHall

__all__ = ["ServiceHall"]
