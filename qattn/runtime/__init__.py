"""Qiskit Runtime access: devices by name, circuits in a device's ISA, and bitstrings sampled on a device.

- :mod:`.devices`: ``fake_<name>`` (local testing mode, offline) or an IBM Quantum backend through the
  saved account; credentials, job statuses and results, local jobs kept for later retrieval;
- :mod:`.programs`: one parameterised circuit per stage kind, transpiled once for the device, with its
  observables, Estimator/Sampler pubs and QPU-time estimate;
- :mod:`.sampling`: bitstrings through the Sampler, and :class:`~.sampling.DeviceSampler`, the device
  sampling a ``qaoa`` solver is handed.

This layer knows devices, not models: the evaluation of a trained model on hardware (plan, submit,
retrieve, compare) is :mod:`qattn.ibm`, which builds on it. Solvers and executors never import it.
"""
