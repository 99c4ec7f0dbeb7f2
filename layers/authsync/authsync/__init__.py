"""authsync: the shared package of wecom-authsync, deployed as a Lambda layer.

Four layers, each a package, named by what they may touch (docs/architecture.md):

* ``wecom`` -- WeCom's protocol, no AWS: ``crypto`` (WXBizMsgCrypt), ``safexml`` and
  ``callbacks`` (callback documents), ``client``, ``errors`` and ``responses`` (WeCom's HTTP APIs,
  their typed errors and typed answers), ``authinfo`` and ``chatdata`` (what a corp authorized);
* ``domain`` -- pure rules: ``diff``, ``snapshot_rules`` and ``install`` (the exchange journal's);
* ``app`` -- use cases over ports: ``ingest``, ``sync`` (the fetch pipeline), ``schedules``,
  ``corps`` (the query view), ``ports``, ``observability`` (metric hooks);
* ``aws`` -- the adapters, the only modules that import boto3/botocore: ``suites``,
  ``tickets``, ``credentials``, ``leases``, ``tokens``, ``queues`` (both FIFO contracts),
  ``snapshots`` and ``snapshot_items``, ``journal``, ``kms`` and ``retrying``.

At the top: ``settings`` (each function's environment, validated at init) and ``wiring``
(the composition root: every function's objects and clients). Package ``__init__`` files
import nothing, so a function imports only what it uses.
"""

__version__ = "0.1.0"
