"""authsync: the shared package of wecom-authsync, deployed as a Lambda layer.

Modules are named by domain concept: ``crypto`` (WXBizMsgCrypt), ``safexml`` and
``callbacks`` (callback documents), ``suites`` (suite configuration), ``tickets``
(suite_ticket storage), ``dispatch`` (the authorization-event FIFO queue) and
``ingest`` (the callback-ingest logic).
"""

__version__ = "0.1.0"
