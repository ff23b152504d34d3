"""Emergency response: calls to 110, 112, 119 and 113, call-takers, CAD dispatch and units.

- :mod:`twin.response.model`: the call centre, the dispatcher and the unit life-cycle, as
  plain SimPy processes;
- :mod:`twin.response.component`: the component that generates incidents and runs them on
  a simulation's clock, with units driving in SUMO or on the travel-time engine;
- :mod:`twin.response.queueing`: Erlang C, Erlang A and Larson's hypercube, the theory the
  model is validated against.
"""

from twin.response.component import ResponseComponent
from twin.response.queueing import erlang_a, erlang_c, hypercube

__all__ = ["ResponseComponent", "erlang_a", "erlang_c", "hypercube"]
