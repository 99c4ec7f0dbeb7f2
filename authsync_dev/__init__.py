"""Development tooling for wecom-authsync: never packaged into a Lambda.

``template`` reads template.yaml and creates its queues/tables in moto; ``httpapi``
builds API Gateway HTTP API events; ``wecom`` signs and encrypts callbacks the way
WeCom does; ``emulator`` is a stateful WeCom server (APIs, callback pushes, faults)
on 127.0.0.1 for tests and local runs (``python -m authsync_dev.emulator``).
"""
