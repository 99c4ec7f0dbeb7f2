"""The emulator's authorization-scope pushes (issue #12): WeCom's documented payload of each.

Each tells the provider that a corp's authorization changed without saying how, so a client
re-fetches ``get_auth_info`` and diffs. The emulator does not model app admins, organization
structure or special permissions: these pushes change no state (what ``get_auth_info``
answers is whatever the corp's authorization already is), except that a push for a corp
without this suite's install is refused like WeCom would never send it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Protocol

from authsync_dev.emulator.pusher import app_event

if TYPE_CHECKING:
    from authsync_dev.emulator.clock import Clock
    from authsync_dev.emulator.emulator import PushResult
    from authsync_dev.emulator.model import Authorization, SuiteRecord
    from authsync_dev.emulator.pusher import Delivery


class _Emulator(Protocol):
    """What the pushes use of :class:`authsync_dev.emulator.Emulator`."""

    clock: Clock

    def authorization(self, suite_id: str, corpid: str) -> Authorization: ...

    def suite(self, suite_id: str) -> SuiteRecord: ...

    def _push(self, suite: SuiteRecord, event: str, extra: dict[str, str | int], corpid: str | None) -> Delivery: ...

    def _send(self, suite: SuiteRecord, event: str, fields: dict[str, str | int], corpid: str | None) -> Delivery: ...

    def _special_auth(self, event: str, suite_id: str, corpid: str, auth_type: str) -> PushResult: ...


__all__ = ["ScopePushes"]


class ScopePushes:
    """Mixed into :class:`authsync_dev.emulator.Emulator`."""

    def change_app_admin(self: _Emulator, suite_id: str, corpid: str, *, agent_id: int = 1) -> PushResult:
        """The corp changed the app's admins (D-95038): an Event-style document for the 数据回调 URL,
        encrypted for the corp (its receiveid and ``ToUserName`` are the corp id)."""
        from authsync_dev.emulator.emulator import PushResult

        self.authorization(suite_id, corpid)
        fields = app_event(corpid, "change_app_admin", agent_id, self.clock.now())
        return PushResult(self._send(self.suite(suite_id), "change_app_admin", fields, corpid))

    def share_agent_change(
        self: _Emulator, suite_id: str, corpid: str, *, agent_id: int = 1, chain: bool = False
    ) -> PushResult:
        """The corp (a group's parent, or with ``chain`` an upstream corp) shared the app with, or removed
        it from, member corps (D-93373): ``CorpId`` is the sharing corp, ``AgentId`` its app."""
        from authsync_dev.emulator.emulator import PushResult

        self.authorization(suite_id, corpid)
        event = "share_chain_change" if chain else "share_agent_change"
        extra: dict[str, str | int] = {"AppId": agent_id, "CorpId": corpid, "AgentId": agent_id}
        return PushResult(self._push(self.suite(suite_id), event, extra, corpid))

    def corp_arch_auth(self: _Emulator, suite_id: str, corpid: str) -> PushResult:
        """The corp authorized its organization structure (D-97378)."""
        from authsync_dev.emulator.emulator import PushResult

        self.authorization(suite_id, corpid)
        return PushResult(self._push(self.suite(suite_id), "corp_arch_auth", {"AuthCorpId": corpid}, corpid))

    def approve_special_auth(
        self: _Emulator, suite_id: str, corpid: str, *, auth_type: str = "customer_acquisition"
    ) -> PushResult:
        """The corp's admin confirmed a special permission (D-98959; 获客助手 is the documented one)."""
        return self._special_auth("approve_special_auth", suite_id, corpid, auth_type)

    def cancel_special_auth(
        self: _Emulator, suite_id: str, corpid: str, *, auth_type: str = "customer_acquisition"
    ) -> PushResult:
        """The corp's admin withdrew a special permission (D-98959)."""
        return self._special_auth("cancel_special_auth", suite_id, corpid, auth_type)

    def _special_auth(self: _Emulator, event: str, suite_id: str, corpid: str, auth_type: str) -> PushResult:
        from authsync_dev.emulator.emulator import PushResult

        self.authorization(suite_id, corpid)
        extra: dict[str, str | int] = {"AuthCorpId": corpid, "AuthType": auth_type}
        return PushResult(self._push(self.suite(suite_id), event, extra, corpid))
