"""The worker side, open so an owner sees exactly what is sent: the NVML collector
(``report``), the proof-of-work answerer (``answer``, GPU path in ``gpu``), and ``backend``,
which plays the network backend's part for one worker so its answers can be checked by the
pipeline end to end."""
