"""The :class:`Emulator`: WeCom's API server, its state, its callback pusher, one control surface.

Tests drive it in-process (``with Emulator(callback_url=...) as wecom: ...``); the
admin API and the CLI expose the same methods over HTTP. A mutation that WeCom
announces with ``change_auth`` (a corp becoming verified, a 数据与智能专区 edition,
scope or status change, a visibility or authorization-mode change) pushes it by
default; pass ``push=False`` to change state silently.

State changes happen under the state lock; pushes happen after it is released,
so a receiver may call straight back into the emulator while being pushed to.

Chaos knobs for a receiver's idempotency and ordering: ``copies`` (``Emulator(copies=3)`` or
``emulator.pusher.copies = 3``) delivers every event that many times, and
:meth:`Emulator.holding` holds back the calling thread's pushes -- each keeps the
TimeStamp of the moment it happened -- for :meth:`Emulator.deliver_held` to deliver late,
in any order::

    with wecom.holding() as held:
        wecom.change_auth(suite_id, corpid)   # held: not delivered yet
    wecom.cancel_auth(suite_id, corpid)       # delivered now
    wecom.deliver_held(held[0])               # the older change_auth arrives after it
"""

from __future__ import annotations

import itertools
import logging
import secrets
import string
import threading
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import AbstractContextManager, contextmanager, nullcontext
from dataclasses import dataclass, field, replace
from types import MappingProxyType
from typing import Any, Literal
from urllib.parse import parse_qsl

from authsync_dev.emulator.admin import AdminApi
from authsync_dev.emulator.api import API_PREFIX, ApiRequest, WeComApi
from authsync_dev.emulator.clock import Clock
from authsync_dev.emulator.entitlement_pushes import EntitlementPushes
from authsync_dev.emulator.errors import NotFoundError
from authsync_dev.emulator.faults import CallCounters, EndpointCounters, Fault, FaultKind, Faults, RateLimiter
from authsync_dev.emulator.model import (
    DAY,
    AgentRecord,
    Authorization,
    AuthUser,
    ChatEdition,
    CorpRecord,
    Dealer,
    Member,
    PaidEdition,
    Privilege,
    RegisterCode,
    SharedFrom,
    SuiteKind,
    SuiteRecord,
    TokenKind,
    day_start,
    new_secret,
)
from authsync_dev.emulator.pusher import (
    AUTH_DEADLINE,
    DEFAULT_RETRY_DELAYS,
    CallbackPusher,
    Delivery,
    DeliveryAttempt,
    RetryPolicy,
)
from authsync_dev.emulator.scope_pushes import ScopePushes
from authsync_dev.emulator.state import DEFAULT_TOKEN_TTL, EmulatorState
from authsync_dev.httpserver import BackgroundHTTPServer, HttpRequest, HttpResponse
from authsync_dev.wecom import EventValue

__all__ = ["Emulator", "HeldPush", "NotFoundError", "PushResult", "sample_chat_editions"]

log = logging.getLogger(__name__)

ADMIN_PREFIX = "/admin/"
TRIAL_DAYS = 30
_ALNUM = string.ascii_letters + string.digits


@dataclass(frozen=True)
class PushResult:
    """A push's delivery, plus the AuthCode or suite_ticket it minted (hidden from ``repr``)."""

    delivery: Delivery | None
    auth_code: str | None = field(default=None, repr=False)
    suite_ticket: str | None = field(default=None, repr=False)

    @property
    def delivered(self) -> bool:
        return self.delivery is not None and self.delivery.delivered

    def to_json(self) -> dict[str, Any]:
        document: dict[str, Any] = {"delivery": self.delivery.to_json() if self.delivery else None}
        if self.auth_code is not None:
            document["auth_code"] = self.auth_code
        if self.suite_ticket is not None:
            document["suite_ticket"] = self.suite_ticket
        return document


@dataclass(frozen=True)
class HeldPush:
    """A push captured by :meth:`Emulator.holding`, to be delivered late by :meth:`Emulator.deliver_held`.

    ``fields`` is the InfoType document exactly as it would have been pushed (its TimeStamp is
    when the event happened); it carries AuthCodes and tickets, so it stays out of ``repr``.
    """

    delivery_id: int
    suite_id: str
    event: str
    corpid: str | None
    fields: Mapping[str, EventValue] = field(repr=False, hash=False)

    @property
    def timestamp(self) -> int:
        """The event's TimeStamp (an Event-style document's CreateTime): when it happened, not when it is delivered."""
        stamp = self.fields.get("TimeStamp", self.fields.get("CreateTime"))
        if not isinstance(stamp, int | str):
            raise TypeError("the held document has no TimeStamp")
        return int(stamp)


def _alnum(length: int) -> str:
    return "".join(secrets.choice(_ALNUM) for _ in range(length))


def _build[T](cls: type[T], value: T | Mapping[str, Any]) -> T:
    """Accept a model instance or its JSON form (admin API); unknown keys raise TypeError."""
    if isinstance(value, cls):
        return value
    if not isinstance(value, Mapping):
        raise TypeError(f"expected {cls.__name__} or an object")
    if cls is AgentRecord:
        data = dict(value)
        if isinstance(data.get("privilege"), Mapping):
            data["privilege"] = Privilege(**data["privilege"])
        if isinstance(data.get("shared_from"), Mapping):
            data["shared_from"] = SharedFrom(**data["shared_from"])
        return cls(**data)
    if cls is ChatEdition:
        built: T = ChatEdition.from_mapping(value)  # type: ignore[assignment]
        return built
    return cls(**value)


Guard = Callable[[], AbstractContextManager[object]]
"""A context manager factory wrapped around each periodic ticket push round."""


class Emulator(ScopePushes, EntitlementPushes):
    """A faithful, stateful stand-in for WeCom's server side (see the package docstring).

    ``callback_url`` is the base of the provider's 指令回调 URL; events for a suite go to
    ``<callback_url>/<suite_id>`` unless the suite has its own URL. ``ticket_interval``
    (seconds) starts a background thread that mints and pushes a suite_ticket for every
    suite on that period; ``None`` leaves ticket pushes to :meth:`push_suite_ticket`.
    The emulator plays one provider: ``provider_corpid`` (default the test suite's) and
    ``provider_secret`` (default generated), shared by every suite it registers.
    """

    def __init__(
        self,
        *,
        port: int = 0,
        callback_url: str | None = None,
        clock: Clock | None = None,
        token_ttl: int = DEFAULT_TOKEN_TTL,
        ticket_interval: float | None = None,
        retries: int = 3,
        retry_delays: Sequence[float] = DEFAULT_RETRY_DELAYS,
        delivery_timeout: float = 5.0,
        retry_on: RetryPolicy = "network",
        auth_deadline: float = AUTH_DEADLINE,
        seed: int | None = None,
        has_more_as_int: bool = False,
        copies: int = 1,
        provider_corpid: str | None = None,
        provider_secret: str | None = None,
    ) -> None:
        self.clock: Clock = clock or Clock()
        self.callback_url = callback_url.rstrip("/") if callback_url else None
        self.ticket_interval = ticket_interval
        self._stopping = threading.Event()
        self.state = EmulatorState(
            self.clock, token_ttl=token_ttl, provider_corpid=provider_corpid, provider_secret=provider_secret
        )
        self.faults: Faults = Faults(seed)
        self.limits: RateLimiter = RateLimiter()
        self.call_counters: CallCounters = CallCounters()
        self.api = WeComApi(
            self.state,
            faults=self.faults,
            limits=self.limits,
            counters=self.call_counters,
            has_more_as_int=has_more_as_int,
            stopping=self._stopping,
        )
        self.pusher = CallbackPusher(
            self.clock,
            timeout=delivery_timeout,
            retries=retries,
            retry_delays=retry_delays,
            stopping=self._stopping,
            retry_on=retry_on,
            auth_deadline=auth_deadline,
            copies=copies,
        )
        self._holding = threading.local()
        self._server = BackgroundHTTPServer(self._handle, port=port, name="emulator-http")
        self._ticket_thread: threading.Thread | None = None
        self._ticket_stop = threading.Event()
        self._agent_ids = itertools.count(1_000_002)
        self.admin = AdminApi(self)

    # -- lifecycle ----------------------------------------------------------------------

    def start(self) -> Emulator:
        self._stopping.clear()
        self._server.start()
        if self.ticket_interval:
            self.start_ticket_pusher(self.ticket_interval)
        return self

    def stop(self) -> None:
        """Stop pushing, interrupt slow faults and retry waits, close the socket."""
        self._stopping.set()
        self.stop_ticket_pusher()
        self._server.stop()

    def __enter__(self) -> Emulator:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def running(self) -> bool:
        return self._server.running

    @property
    def base_url(self) -> str:
        """``http://127.0.0.1:<port>``: use as WeCom's host (``<base_url>/cgi-bin/...``)."""
        return self._server.url

    @property
    def api_url(self) -> str:
        return self._server.url + API_PREFIX.rstrip("/")

    @property
    def admin_url(self) -> str:
        return self._server.url + ADMIN_PREFIX.rstrip("/")

    def _handle(self, request: HttpRequest) -> HttpResponse:
        query: dict[str, str] = {}
        for key, value in parse_qsl(request.query_string, keep_blank_values=True):
            query.setdefault(key, value)
        if request.path.startswith(API_PREFIX):
            answer = self.api.handle(ApiRequest(request.method, request.path, query, request.body, request.client_ip))
            return HttpResponse(answer.status, answer.body, answer.content_type)
        if request.path.startswith(ADMIN_PREFIX) or request.path == ADMIN_PREFIX.rstrip("/"):
            return self.admin.handle(request.method, request.path, query, request.body)
        return HttpResponse(404, b"404 page not found")

    # -- setup --------------------------------------------------------------------------

    def add_suite(
        self,
        suite_id: str | None = None,
        suite_secret: str | None = None,
        token: str | None = None,
        encoding_aes_key: str | None = None,
        *,
        kind: SuiteKind = "third_party",
        provider_corpid: str | None = None,
        callback_url: str | None = None,
        provider_secret: str | None = None,
    ) -> SuiteRecord:
        """Register a suite of the emulator's provider; omitted credentials are generated (``ww…`` or, for
        代开发, ``dk…``). A ``provider_corpid`` or ``provider_secret`` other than the provider's is refused."""
        if kind not in ("third_party", "customized"):
            raise ValueError("kind must be third_party or customized")
        provider = self.state.provider
        if provider_corpid not in (None, provider.corpid) or provider_secret not in (None, provider.secret):
            raise ValueError(f"the emulator plays one provider ({provider.corpid}): pass Emulator(provider_corpid=...)")
        prefix = "dk" if kind == "customized" else "ww"
        suite = SuiteRecord(
            suite_id=suite_id or prefix + secrets.token_hex(8),
            suite_secret=suite_secret or new_secret(32),
            token=token or _alnum(32),
            encoding_aes_key=encoding_aes_key or _alnum(43),
            kind=kind,
            provider_corpid=provider.corpid,
            provider_secret=provider.secret,
            callback_url=callback_url,
        )
        suite.crypto()  # rejects a malformed EncodingAESKey now rather than at the first push
        with self.state.lock:
            if suite.suite_id in self.state.suites:
                raise ValueError("suite already exists")
            self.state.suites[suite.suite_id] = suite
        return suite

    def add_corp(self, corpid: str | None = None, corp_name: str | None = None, **attributes: Any) -> CorpRecord:
        """Register a corp; ``attributes`` are :class:`CorpRecord` fields (``verified=True``, ``ex_names=[...]``…)."""
        corpid = corpid or "ww" + secrets.token_hex(8)
        corp = CorpRecord(corpid=corpid, corp_name=corp_name or f"测试企业{corpid[-4:]}", **attributes)
        if corp.verified:
            corp.corp_full_name = corp.corp_full_name or f"{corp.corp_name}有限公司"
            corp.verified_end_time = corp.verified_end_time or int(self.clock.now()) + 365 * DAY
        with self.state.lock:
            if corpid in self.state.corps:
                raise ValueError("corp already exists")
            self.state.corps[corpid] = corp
        return corp

    # -- lookups ------------------------------------------------------------------------

    def suite(self, suite_id: str) -> SuiteRecord:
        with self.state.lock:
            suite = self.state.suites.get(suite_id)
        if suite is None:
            raise NotFoundError(f"unknown suite {suite_id}")
        return suite

    def corp(self, corpid: str) -> CorpRecord:
        with self.state.lock:
            corp = self.state.corps.get(corpid)
        if corp is None:
            raise NotFoundError(f"unknown corp {corpid}")
        return corp

    def authorization(self, suite_id: str, corpid: str) -> Authorization:
        with self.state.lock:
            auth = self.state.authorizations.get((suite_id, corpid))
        if auth is None:
            raise NotFoundError(f"corp {corpid} never installed suite {suite_id}")
        return auth

    def ticket(self, suite_id: str) -> str | None:
        """The suite's current ticket (what the last suite_ticket push carried)."""
        with self.state.lock:
            current = self.suite(suite_id).current_ticket
            return current.value if current else None

    def url_for(self, suite: SuiteRecord) -> str | None:
        if suite.callback_url:
            return suite.callback_url
        return f"{self.callback_url}/{suite.suite_id}" if self.callback_url else None

    # -- pushes -------------------------------------------------------------------------

    def _push(self, suite: SuiteRecord, event: str, extra: dict[str, str | int], corpid: str | None) -> Delivery:
        fields: dict[str, str | int] = {"SuiteId": suite.suite_id}
        if "AuthCode" in extra:
            fields["AuthCode"] = extra.pop("AuthCode")
        fields.update({"InfoType": event, "TimeStamp": int(self.clock.now())})
        fields.update(extra)
        return self._send(suite, event, fields, corpid)

    def _send(self, suite: SuiteRecord, event: str, fields: Mapping[str, EventValue], corpid: str | None) -> Delivery:
        """Deliver one document (or hold it back, see :meth:`holding`)."""
        held: list[HeldPush] | None = getattr(self._holding, "held", None)
        if held is not None:
            push = HeldPush(self.pusher.next_id(), suite.suite_id, event, corpid, MappingProxyType(fields))
            held.append(push)
            return Delivery(push.delivery_id, event, suite.suite_id, corpid, ())
        return self.pusher.deliver(suite, self.url_for(suite), event, fields, corpid=corpid)

    @contextmanager
    def holding(self) -> Iterator[list[HeldPush]]:
        """Hold back the calling thread's pushes (other threads keep delivering) instead of delivering them.

        Inside ``with wecom.holding() as held:`` every push changes state and mints codes as
        usual, and its PushResult still carries them, but its document is appended to ``held``
        and its delivery has no attempts. :meth:`deliver_held` delivers one later, in any order.
        Not reentrant: a nested ``holding()`` in the same thread raises RuntimeError.
        """
        if getattr(self._holding, "held", None) is not None:
            raise RuntimeError("this thread is already holding pushes")
        held: list[HeldPush] = []
        self._holding.held = held
        try:
            yield held
        finally:
            self._holding.held = None

    def deliver_held(self, push: HeldPush) -> Delivery:
        """Deliver a held push now, with its original document (and TimeStamp); ``copies`` apply.

        It goes to the suite's current callback URL, under the held delivery's id.
        """
        suite = self.suite(push.suite_id)
        return self.pusher.deliver(
            suite, self.url_for(suite), push.event, push.fields, corpid=push.corpid, delivery_id=push.delivery_id
        )

    def push_suite_ticket(self, suite_id: str) -> PushResult:
        """Mint a new ticket (the old one stays valid as "previous") and push it."""
        with self.state.lock:
            suite = self.suite(suite_id)
            ticket = suite.rotate_ticket(self.clock.now())
        return PushResult(self._push(suite, "suite_ticket", {"SuiteTicket": ticket}, None), suite_ticket=ticket)

    def push_suite_tickets(self) -> list[PushResult]:
        with self.state.lock:
            suite_ids = list(self.state.suites)
        return [self.push_suite_ticket(suite_id) for suite_id in suite_ids]

    def create_auth(
        self,
        suite_id: str,
        corpid: str,
        *,
        state: str = "",
        push: bool = True,
        agents: Sequence[AgentRecord | Mapping[str, Any]] | None = None,
        auth_mode: int = 0,
        dealer: Dealer | Mapping[str, Any] | None = None,
        shared_from: SharedFrom | Mapping[str, Any] | None = None,
        auth_user: AuthUser | Mapping[str, Any] | Literal[False] | None = None,
        register_code: RegisterCode | Mapping[str, Any] | None = None,
        paid_editions: Sequence[PaidEdition | Mapping[str, Any]] = (),
        chat_editions: Sequence[ChatEdition | Mapping[str, Any]] = (),
        members: Sequence[Member | Mapping[str, Any]] | None = None,
    ) -> PushResult:
        """The corp installs the suite: mint the permanent code and an AuthCode, push ``create_auth``.

        With ``push=False`` the AuthCode is only returned, as when an install started on the
        provider's site hands it over by redirect (spec §2). A cancelled install may be
        re-created; a live one may not. ``auth_user=None`` is a default installing admin,
        ``False`` omits ``auth_user_info`` (spec §3.2: it may be absent).
        """
        suite = self.suite(suite_id)
        self.corp(corpid)
        with self.state.lock:
            existing = self.state.authorizations.get((suite_id, corpid))
            if existing is not None and existing.active:
                raise ValueError("corp already installed this suite")
            customized = suite.kind == "customized"
            if agents is None:
                built_agents = [
                    AgentRecord(
                        agentid=next(self._agent_ids),
                        auth_mode=auth_mode,
                        is_customized_app=customized,
                        privilege=Privilege(level=0 if customized else 1),
                        shared_from=_build(SharedFrom, shared_from) if shared_from is not None else None,
                    )
                ]
            else:
                built_agents = [_build(AgentRecord, a) for a in agents]
            auth = Authorization(
                suite_id=suite_id,
                corpid=corpid,
                permanent_code=new_secret(32),
                agents=built_agents,
                auth_user=None if auth_user is False else _build(AuthUser, auth_user or AuthUser()),
                register_code=_build(RegisterCode, register_code) if register_code is not None else None,
                dealer=_build(Dealer, dealer) if dealer is not None else None,
                paid_editions=[_build(PaidEdition, e) for e in paid_editions],
                state=state,
            )
            if existing is not None:
                auth.revoked_codes |= existing.revoked_codes | {existing.permanent_code}
            self.state.authorizations[(suite_id, corpid)] = auth
            self.state.entitlements.record(suite_id, corpid, self.clock.now())  # the license trial starts
            if chat_editions:
                self._set_editions(auth, chat_editions, None)
            if members is not None:
                auth.members = [_build(Member, m) for m in members]
            code = self.state.mint_auth_code(suite_id, corpid, "create_auth")
        delivery = None
        if push:
            delivery = self._push(suite, "create_auth", {"AuthCode": code, "State": state}, corpid)
        return PushResult(delivery, auth_code=code)

    def change_auth(self, suite_id: str, corpid: str) -> PushResult:
        """Push ``change_auth`` for an install without changing anything."""
        return PushResult(self._change_auth(suite_id, corpid))

    def _change_auth(self, suite_id: str, corpid: str) -> Delivery:
        auth = self.authorization(suite_id, corpid)
        extra: dict[str, str | int] = {"AuthCorpId": corpid}
        if auth.state:
            extra["State"] = auth.state
        return self._push(self.suite(suite_id), "change_auth", extra, corpid)

    def cancel_auth(self, suite_id: str, corpid: str, *, push: bool = True) -> PushResult:
        """The corp uninstalls: the permanent code dies (40084), its corp tokens are revoked (40014)."""
        with self.state.lock:
            auth = self.authorization(suite_id, corpid)
            auth.active = False
            auth.revoke_permanent_code()
            auth.pending_code = None
            self.state.invalidate_tokens(suite_id=suite_id, corpid=corpid, kind="corp", revoke=True)
        delivery = None
        if push:
            delivery = self._push(self.suite(suite_id), "cancel_auth", {"AuthCorpId": corpid}, corpid)
        return PushResult(delivery)

    def reset_permanent_code(self, suite_id: str, corpid: str, *, push: bool = True) -> PushResult:
        """代开发 "重新获取secret": a new AuthCode; once exchanged, the old permanent code fails with 40084."""
        suite = self.suite(suite_id)
        if suite.kind != "customized":
            raise ValueError("reset_permanent_code exists for 代开发 (customized) suites only")
        with self.state.lock:
            auth = self.authorization(suite_id, corpid)
            if not auth.active:
                raise ValueError("authorization was cancelled")
            auth.pending_code = new_secret(32)
            code = self.state.mint_auth_code(suite_id, corpid, "reset_permanent_code")
        delivery = self._push(suite, "reset_permanent_code", {"AuthCode": code}, corpid) if push else None
        return PushResult(delivery, auth_code=code)

    def auth_data_permission(self, suite_id: str, corpid: str, auth_type: str = "data_zone_chat") -> PushResult:
        """A data permission (default 数据专区 chat) was granted or renewed (D-101587)."""
        self.authorization(suite_id, corpid)
        extra: dict[str, str | int] = {"AuthCorpId": corpid, "AuthType": auth_type}
        return PushResult(self._push(self.suite(suite_id), "auth_data_permission", extra, corpid))

    def expire_remind_data_permission(
        self, suite_id: str, corpid: str, auth_type: str = "data_zone_chat"
    ) -> PushResult:
        """A data permission expires in 7 days (D-101587)."""
        self.authorization(suite_id, corpid)
        extra: dict[str, str | int] = {"AuthCorpId": corpid, "AuthType": auth_type}
        return PushResult(self._push(self.suite(suite_id), "expire_remind_data_permission", extra, corpid))

    # -- mutations announced with change_auth --------------------------------------------

    def _announce(self, suite_id: str, corpid: str, push: bool) -> Delivery | None:
        return self._change_auth(suite_id, corpid) if push else None

    def verify_corp(
        self,
        corpid: str,
        *,
        verified: bool = True,
        verified_end_time: int | None = None,
        corp_full_name: str | None = None,
        ex_names: Sequence[str] | None = None,
        push: bool = True,
    ) -> list[Delivery]:
        """The corp completes (or loses) 主体验证; every live install hears ``change_auth``.

        ⚠️ WeCom has no dedicated event for this (spec §5c); announcing it with change_auth
        is this emulator's choice, so clients are exercised on the re-query path.
        """
        with self.state.lock:
            corp = self.corp(corpid)
            corp.verified = verified
            if verified:
                corp.corp_full_name = corp_full_name or corp.corp_full_name or f"{corp.corp_name}有限公司"
                corp.verified_end_time = verified_end_time or int(self.clock.now()) + 365 * DAY
                if ex_names is not None:
                    corp.ex_names = list(ex_names)
            else:
                corp.verified_end_time = 0
            installs = [a.suite_id for a in self.state.authorizations.values() if a.corpid == corpid and a.active]
        return [self._change_auth(suite_id, corpid) for suite_id in installs] if push else []

    def _set_editions(
        self, auth: Authorization, editions: Sequence[ChatEdition | Mapping[str, Any]], trial: tuple[int, int] | None
    ) -> None:
        now = self.clock.now()
        built = [_build(ChatEdition, e) for e in editions]
        if len({e.edition for e in built}) != len(built):
            raise ValueError("each edition may appear once")
        previous = {e.edition: e for e in auth.chat_editions}
        for edition in built:
            if edition.authorized_at is None and edition.edition in previous:
                edition.authorized_at = previous[edition.edition].authorized_at
            edition.settle(now)
        if trial is not None:
            auth.trial = (int(trial[0]), int(trial[1]))
        elif auth.trial is None and any(e.status in (1, 2) for e in built):
            start = day_start(now)
            auth.trial = (start, start + TRIAL_DAYS * DAY - 1)
        auth.chat_editions = sorted(built, key=lambda e: e.edition)

    def set_chatdata_editions(
        self,
        suite_id: str,
        corpid: str,
        editions: Sequence[ChatEdition | Mapping[str, Any]],
        *,
        trial: tuple[int, int] | Sequence[int] | None = None,
        push: bool = True,
    ) -> Delivery | None:
        """Replace the install's 数据与智能专区 editions (empty: chatdata not authorized, 48002).

        The shared trial starts today (CST) and lasts 30 days unless ``trial`` is given;
        an edition keeps its ``authorized_at`` across updates.
        """
        with self.state.lock:
            auth = self.authorization(suite_id, corpid)
            window = None if trial is None else (int(trial[0]), int(trial[1]))
            self._set_editions(auth, editions, window)
        return self._announce(suite_id, corpid, push)

    def _edition(self, auth: Authorization, edition: int) -> ChatEdition:
        for candidate in auth.chat_editions:
            if candidate.edition == edition:
                return candidate
        raise NotFoundError(f"edition {edition} is not authorized")

    def set_chatdata_status(
        self,
        suite_id: str,
        corpid: str,
        edition: int,
        status: int,
        *,
        begin_time: int | None = None,
        end_time: int | None = None,
        push: bool = True,
    ) -> Delivery | None:
        """Move one edition to ``status`` (1..7); non-trial statuses get a default period if none is given."""
        with self.state.lock:
            auth = self.authorization(suite_id, corpid)
            current = self._edition(auth, edition)
            updated = replace(current, status=status, begin_time=begin_time, end_time=end_time)
            if status == current.status and begin_time is None and end_time is None:
                updated = replace(updated, begin_time=current.begin_time, end_time=current.end_time)
            updated.settle(self.clock.now())
            auth.chat_editions = [updated if e.edition == edition else e for e in auth.chat_editions]
        return self._announce(suite_id, corpid, push)

    def set_chatdata_scope(
        self,
        suite_id: str,
        corpid: str,
        edition: int,
        *,
        userid_list: Sequence[str] | None = None,
        department_id_list: Sequence[int] | None = None,
        tag_id_list: Sequence[int] | None = None,
        msg_duration_days: int | None = None,
        auth_user_count: int | None = None,
        push: bool = True,
    ) -> Delivery | None:
        """Change an edition's archive scope or history length (会话类型/人员范围/会话时长 changes)."""
        with self.state.lock:
            target = self._edition(self.authorization(suite_id, corpid), edition)
            if userid_list is not None:
                target.userid_list = list(userid_list)
            if department_id_list is not None:
                target.department_id_list = list(department_id_list)
            if tag_id_list is not None:
                target.tag_id_list = list(tag_id_list)
            if msg_duration_days is not None:
                target.msg_duration_days = msg_duration_days
            if auth_user_count is not None:
                target.auth_user_count = auth_user_count
        return self._announce(suite_id, corpid, push)

    def set_members(
        self, suite_id: str, corpid: str, members: Sequence[Member | Mapping[str, Any]] | None, *, push: bool = False
    ) -> Delivery | None:
        """Set the authorized-member list (``None``: derive it from the scopes). Silent by default."""
        with self.state.lock:
            auth = self.authorization(suite_id, corpid)
            auth.members = None if members is None else [_build(Member, m) for m in members]
        return self._announce(suite_id, corpid, push)

    def _agent(self, auth: Authorization, agentid: int | None) -> AgentRecord:
        for agent in auth.agents:
            if agentid is None or agent.agentid == agentid:
                return agent
        raise NotFoundError("no such agent")

    def set_visibility(
        self,
        suite_id: str,
        corpid: str,
        *,
        allow_user: Sequence[str] | None = None,
        allow_party: Sequence[int] | None = None,
        allow_tag: Sequence[int] | None = None,
        agentid: int | None = None,
        push: bool = True,
    ) -> Delivery | None:
        """Change an agent's visible range (default: the first agent)."""
        with self.state.lock:
            agent = self._agent(self.authorization(suite_id, corpid), agentid)
            privilege = agent.privilege or Privilege()
            if allow_user is not None:
                privilege.allow_user = list(allow_user)
            if allow_party is not None:
                privilege.allow_party = list(allow_party)
            if allow_tag is not None:
                privilege.allow_tag = list(allow_tag)
            agent.privilege = privilege
        return self._announce(suite_id, corpid, push)

    def set_auth_mode(
        self, suite_id: str, corpid: str, auth_mode: int, *, agentid: int | None = None, push: bool = True
    ) -> Delivery | None:
        """Switch admin (0) / member (1) authorization; member mode blanks scale and industries."""
        if auth_mode not in (0, 1):
            raise ValueError("auth_mode must be 0 or 1")
        with self.state.lock:
            self._agent(self.authorization(suite_id, corpid), agentid).auth_mode = auth_mode
        return self._announce(suite_id, corpid, push)

    # -- tokens, faults, limits, clock, counters ----------------------------------------

    def invalidate_tokens(
        self, *, suite_id: str | None = None, corpid: str | None = None, kind: TokenKind | None = None
    ) -> int:
        """End matching tokens early, as WeCom may (42009/42001 afterwards); returns how many.

        ``kind`` ``"provider"`` ends the provider token (its ``corpid`` is the provider's)."""
        with self.state.lock:
            return self.state.invalidate_tokens(suite_id=suite_id, corpid=corpid, kind=kind)

    def inject_fault(
        self,
        endpoint: str,
        kind: FaultKind | int | str,
        *,
        probability: float = 1.0,
        times: int | None = None,
        delay: float = 2.0,
        status: int = 503,
    ) -> Fault:
        """Make ``endpoint`` (a path after ``/cgi-bin/``, or ``*``) fail with ``kind``.

        Kinds: ``-1``, ``45009`` and ``45033`` (errcode), ``http5xx`` (``status``), ``slow`` (answer
        after ``delay`` real seconds), ``invalidate_token`` (the presented token, or the
        one the call would hand out again, ends just before the call is served).
        """
        return self.faults.add(endpoint, kind, probability=probability, times=times, delay=delay, status=status)

    def clear_faults(self, endpoint: str | None = None) -> int:
        return self.faults.clear(endpoint)

    def set_rate_limit(self, endpoint: str, max_calls: int, per_seconds: float = 60.0) -> None:
        """Answer 45009 beyond ``max_calls`` per ``per_seconds`` of emulator time (``*``: each endpoint)."""
        self.limits.set(endpoint, max_calls, per_seconds)

    def clear_rate_limits(self) -> None:
        self.limits.clear()

    def now(self) -> float:
        return self.clock.now()

    def advance(self, seconds: float) -> float:
        """Advance the emulated clock: tokens, codes and tickets expire; editions move on."""
        return self.clock.advance(seconds)

    def counters(self) -> dict[str, EndpointCounters]:
        return self.call_counters.snapshot()

    def calls(self, endpoint: str) -> int:
        return self.call_counters.get(endpoint).calls

    def corp_calls(self, corpid: str) -> dict[str, int]:
        """Answered WeCom calls about ``corpid``, per endpoint."""
        with self.api._corp_calls_lock:
            return {endpoint: n for (corp, endpoint), n in sorted(self.api.corp_calls.items()) if corp == corpid}

    def reset_counters(self) -> None:
        self.call_counters.reset()
        with self.api._corp_calls_lock:
            self.api.corp_calls.clear()

    def deliveries(self) -> list[Delivery]:
        return self.pusher.deliveries()

    def delivery_log(self) -> list[DeliveryAttempt]:
        return self.pusher.log()

    # -- periodic ticket pushes ---------------------------------------------------------

    def start_ticket_pusher(self, interval: float, *, immediately: bool = True, guard: Guard | None = None) -> None:
        """Push a ticket to every suite now (unless not ``immediately``) and then every ``interval`` real seconds.

        ``guard`` wraps each round (the local stack counts it as activity, so ``wait_idle``
        waits for a push in flight)."""
        if interval <= 0:
            raise ValueError("interval must be positive")
        self.stop_ticket_pusher()
        self.ticket_interval = interval
        self._ticket_stop = threading.Event()
        self._ticket_thread = threading.Thread(
            target=self._ticket_loop,
            args=(interval, self._ticket_stop, immediately, guard),
            name="emulator-tickets",
            daemon=True,
        )
        self._ticket_thread.start()

    def stop_ticket_pusher(self) -> None:
        thread = self._ticket_thread
        self._ticket_stop.set()
        self._ticket_thread = None
        if thread is not None and thread is not threading.current_thread():
            thread.join(timeout=30)

    def push_ticket_round(self, guard: Guard | None = None) -> list[PushResult]:
        """One round of the periodic push: a new ticket to every suite; refused pushes are logged."""
        with guard() if guard is not None else nullcontext():
            results = self.push_suite_tickets()
        refused = sum(1 for r in results if not r.delivered)
        if refused:
            log.warning("%d suite_ticket push(es) were not answered with success", refused)
        return results

    def _ticket_loop(
        self,
        interval: float,
        stop: threading.Event,
        immediately: bool,
        guard: Guard | None,
    ) -> None:
        if not immediately and stop.wait(interval):
            return
        while not stop.is_set():
            try:
                self.push_ticket_round(guard)
            except Exception as exc:  # keep pushing: one bad suite must not end the schedule
                log.exception("ticket push failed (%s)", type(exc).__name__)
            if stop.wait(interval):
                return

    # -- overview -----------------------------------------------------------------------

    def snapshot(self) -> dict[str, Any]:
        """What the emulator holds, without secret values."""
        with self.state.lock:
            now = self.clock.now()
            return {
                "now": now,
                "callback_url": self.callback_url,
                "ticket_interval": self.ticket_interval if self._ticket_thread else None,
                "suites": [
                    {
                        "suite_id": s.suite_id,
                        "kind": s.kind,
                        "callback_url": self.url_for(s),
                        "has_ticket": s.current_ticket is not None,
                    }
                    for s in self.state.suites.values()
                ],
                "provider_corpid": self.state.provider.corpid,
                "corps": [c.summary() for c in self.state.corps.values()],
                "authorizations": [
                    {**a.summary(), "entitlements": self.state.entitlements.summary(a.suite_id, a.corpid)}
                    for a in self.state.authorizations.values()
                ],
                "live_tokens": sum(1 for t in self.state.tokens.values() if t.live(now)),
            }


def sample_chat_editions() -> list[ChatEdition]:
    """Seed-0's two trial editions (内部会话, 内外部会话) with their scopes."""
    return [
        ChatEdition(1, 1, ["zhangsan", "lisi"], [1, 2, 3], [10, 11], 90),
        ChatEdition(2, 1, ["zhangsan", "wangwu"], [1, 2], [10], 90),
    ]
