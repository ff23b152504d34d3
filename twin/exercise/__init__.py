"""Command-post exercises (Sespim): the twin plays the city, trainees run the command post.

- :mod:`twin.exercise.run`: ``twin exercise check`` and ``twin exercise run``;
- :mod:`twin.exercise.director`: the component that plays the MSEL and takes the orders;
- :mod:`twin.exercise.aar`: the after-action review (``twin exercise aar``);
- :mod:`twin.exercise.whatif`: what the expected action would have changed at each key
  decision (``twin exercise whatif``).

The MSEL, the teams and the orders are vocabulary: :mod:`twin.scenario.exercise`.
"""
