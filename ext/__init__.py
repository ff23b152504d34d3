"""``twin.ext``: the compiled Cython kernels (routing, hotspots, community hot loops).

Each ``ext/<kernel>.pyx`` is compiled by ``setup.py`` into ``twin.ext.<kernel>``; the
Python APIs that validate arguments and call them live in the core package.
"""
