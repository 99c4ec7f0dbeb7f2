"""authsync: the shared package of wecom-authsync, deployed as a Lambda layer.

Modules are named by domain concept: ``crypto`` (WXBizMsgCrypt), ``safexml`` and
``callbacks`` (callback documents), ``suites`` (suite configuration), ``tickets``
(suite_ticket storage), ``queues`` (both FIFO queues' message contracts), ``ingest``
(the callback-ingest logic), ``client`` (WeCom's HTTP APIs), ``credentials`` and
``tokens`` (Secrets Manager credentials, single-flight token renewal), ``authinfo``,
``chatdata`` and ``snapshots`` (what a corp authorized, versioned in DynamoDB), ``sync``
(the fetch pipeline), ``settings`` (each function's environment, validated at init) and
``wiring`` (the composition root: every function's objects and clients).
"""

__version__ = "0.1.0"
