"""smart-policing-twin: a city digital twin for police and emergency planning.

The twin is built from OpenStreetMap (``twin build``), loaded as one
:class:`~twin.city.City` bundle, and driven by SUMO traffic, SimPy call-centre and
dispatch processes and Mesa community models on one clock.

>>> import twin
>>> twin.__version__  # doctest: +SKIP
'0.1.0'
"""

from __future__ import annotations

from twin._errors import BundleError, InputError, SumoError, TwinError
from twin._version import __version__

__all__ = ["BundleError", "InputError", "SumoError", "TwinError", "__version__"]
