"""authsync: the shared package of wecom-authsync, deployed as a Lambda layer.

Modules are named by domain concept: ``crypto`` (WXBizMsgCrypt), ``safexml`` and
``callbacks`` (callback documents), ``suites`` (suite configuration), ``tickets``
(suite_ticket storage), ``queues`` (both FIFO queues' message contracts), ``ingest``
(the callback-ingest logic), ``client`` and ``errors`` (WeCom's HTTP APIs and their typed
errors), ``credentials`` (secret names, reads, forward-only writes), ``leases`` and ``tokens``
(single-flight token renewal), ``authinfo``,
``chatdata`` and ``snapshots`` (what a corp authorized, versioned in DynamoDB), ``sync``
(the fetch pipeline), ``settings`` (each function's environment, validated at init) and
``wiring`` (the composition root: every function's objects and clients).
"""

__version__ = "0.1.0"
