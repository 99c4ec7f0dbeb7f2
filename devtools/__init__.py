"""Development tooling for wecom-authsync: never packaged into a Lambda.

``template`` reads template.yaml and creates its queues/tables in moto; ``httpapi``
builds API Gateway HTTP API events; ``wecom`` signs and encrypts callbacks the way
WeCom does, for tests, samples and (later) the emulator.
"""
