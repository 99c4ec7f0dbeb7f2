"""The chatdata function's use case: one chatdata request → ``chatdata/get_corp_auth_info`` + members → snapshot.

Coalesced like the auth-info fetch (:mod:`authsync.app.sync`): a corp whose chatdata was fetched
after the request was sent needs no new fetch. 48002 (数据与智能专区 not authorized) is stored
as the corp's state, not retried.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING

from authsync.app.sync import Outcome, SyncResult
from authsync.aws.queues import ChatdataRequest
from authsync.aws.tokens import CorpNotAuthorizedError
from authsync.wecom.errors import WeComAuthorizationInvalidError, WeComPermissionError

if TYPE_CHECKING:
    from authsync.app.ports import AccessTokens, Clock, Snapshots, WeComApi

__all__ = ["ChatdataSync"]


class ChatdataSync:
    """The chatdata function's logic, over the ports of :mod:`authsync.app.ports` (adapters: :mod:`authsync.wiring`)."""

    def __init__(
        self,
        *,
        client: WeComApi,
        tokens: AccessTokens,
        snapshots: Snapshots,
        clock: Clock = time.time,
    ) -> None:
        self._client = client
        self._tokens = tokens
        self._snapshots = snapshots
        self._clock = clock

    def handle(self, request: ChatdataRequest) -> SyncResult:
        from authsync.wecom.chatdata import not_authorized, snapshot_document, summarize

        suite_id, corp_id = request.suite_id, request.corp_id
        state = self._snapshots.get(suite_id, corp_id)
        if state is None or state.status == "cancelled":
            return SyncResult(Outcome.SKIPPED_INACTIVE, suite_id, corp_id)
        if (state.chatdata_fetched_at or 0) >= request.requested_at:
            return SyncResult(Outcome.FRESH, suite_id, corp_id, state.chatdata_version)
        fetched_at = self._clock()
        try:
            info = self._tokens.with_corp_token(suite_id, corp_id, self._client.get_corp_chat_auth_info)
            users = self._tokens.with_corp_token(
                suite_id, corp_id, lambda token: list(self._client.iter_auth_users(token))
            )
            document = snapshot_document(info, users)
            summary = summarize(document)
        except WeComPermissionError as exc:
            # 48002: 数据与智能专区 not authorized — a state of the corp, not an error loop.
            errcode = exc.errcode or 48002
            document = {"not_authorized": True, "errcode": errcode}
            summary = not_authorized(errcode)
        except CorpNotAuthorizedError:
            return SyncResult(Outcome.UNKNOWN_CORP, suite_id, corp_id)
        except WeComAuthorizationInvalidError:
            return SyncResult(Outcome.AUTHORIZATION_INVALID, suite_id, corp_id)  # see AuthorizationSync
        recorded = self._snapshots.record(
            suite_id, corp_id, "chatdata", document, fetched_at, derived={"chatdata": summary}
        )
        return SyncResult(Outcome.FETCHED, suite_id, corp_id, recorded.version, recorded.changed)
