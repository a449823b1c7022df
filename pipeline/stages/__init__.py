"""The pipeline's DoFns, one module per group of stages; app.py wires them into the graph.

A new stage is a DoFn here (a per-item stage subclasses ``ParkFailures``, which counts it and
parks its failures), its name in ``newsmon.models.Stage``, and one step in a composite of
app.py.
"""
