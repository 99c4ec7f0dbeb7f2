"""In-memory fakes of every port in :mod:`authsync.app.ports`, for the use-case tests of :mod:`authsync.app.sync`.

No moto, no emulator, no network, no sleeping: a :class:`ManualClock` is the only time.
Every fake appends what it was asked to one shared :class:`CallLog`, so a test can assert
the order of calls across collaborators (the permanent code is stored before
get_auth_info is called).

* :class:`FakeWeCom` answers with documents shaped like WeCom's (v2 get_permanent_code,
  v2 get_auth_info, chatdata/get_corp_auth_info and get_auth_user_list, as
  ``authsync_dev.emulator`` produces them), keeps AuthCodes single-use and valid 10 minutes,
  rejects a dead permanent code with 40084, a corp without 数据与智能专区 with 48002, and
  raises errors a test queues with :meth:`FakeWeCom.fail`. Every error is the typed one of
  :mod:`authsync.wecom.errors` (built with ``error_for``).
* :class:`FakeTokens` hands out suite/corp tokens the fake WeCom checks, issues a corp token
  only for a corp with a permanent code (else ``CorpNotAuthorizedError``), and follows the
  real rule "on a token error of the kind used, refresh once and retry once".
* :class:`FakePermanentCodes`: forward-only by ``obtained_at``, ``put`` says whether it replaced.
* :class:`FakeSnapshots` keeps the write rules of :mod:`authsync.domain.snapshot_rules` that the
  use cases observe: lifecycle events (an install with ``lifecycle_at``, a cancellation) apply in
  TimeStamp order, an older one is ``superseded``; a cancelled corp ignores fetches unless
  ``reactivate``; an older fetch is ``stale``; an equal document at the same ``fetched_at`` is a
  redelivery and at a later one a refresh (no version); a changed document is version n+1; a tombstone keeps its
  version numbers and drops the documents. Documents compare by plain equality (the real
  store also ignores volatile paths such as the v1 QR code, which v2 never returns).
* :class:`RecordingChatdataRequests` records what would go on the chatdata queue.
* :class:`FakeJournal`: the exchange journal's contract — the first ``record`` of a key wins
  and later ones get the stored entry back; ``record`` can be made to fail (the journal was
  unreachable until the deadline) with :meth:`FakeJournal.fail`; ``close`` sets the status.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal, TypeVar

from authsync.app.chatdata_sync import ChatdataSync
from authsync.app.sync import AuthorizationSync
from authsync.aws.kms import SealError
from authsync.aws.queues import AuthMessage, ChatdataRequest
from authsync.aws.retrying import DeadlineExceededError
from authsync.aws.tokens import CorpNotAuthorizedError
from authsync.domain.corp_state import KindState
from authsync.domain.install import JournalEntry, JournalStatus
from authsync.wecom.authinfo import strip_secrets
from authsync.wecom.errors import WeComError, WeComTokenError, error_for
from authsync.wecom.responses import PermanentCodeGrant

T = TypeVar("T")

START = 1_750_000_000.0
SUITE = "wwsuitefake0000001"
AUTH_CODE_TTL = 600.0


# -- time and the call log ---------------------------------------------------------------------------


class ManualClock:
    """The time is what the test says it is."""

    def __init__(self, start: float = START) -> None:
        self.now = start

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> float:
        self.now += seconds
        return self.now


@dataclass
class CallLog:
    """Every port call of every fake, in order: ``(name, args)``; names are ``<fake>.<method>``."""

    entries: list[tuple[str, tuple[Any, ...]]] = field(default_factory=list)

    def add(self, name: str, *args: Any) -> None:
        self.entries.append((name, args))

    def names(self, prefix: str = "") -> list[str]:
        return [name for name, _ in self.entries if name.startswith(prefix)]

    def index(self, name: str) -> int:
        return self.names().index(name)

    def args(self, name: str) -> list[tuple[Any, ...]]:
        return [args for n, args in self.entries if n == name]

    def clear(self) -> None:
        self.entries.clear()


# -- WeCom ---------------------------------------------------------------------------------------------


def chat_edition(edition: int, status: int = 1, *users: str, begin: int = 1_749_000_000) -> dict[str, Any]:
    """One ``auth_edition_list[]`` entry as chatdata/get_corp_auth_info returns it."""
    return {
        "edition": edition,
        "auth_scope": {"userid_list": list(users), "department_id_list": [1, 2], "tag_id_list": [10]},
        "status": status,
        "begin_time": begin,
        "end_time": begin + 14 * 86400,
        "msg_duration_days": 90,
        "auth_user_count": len(users),
    }


def sample_editions() -> list[dict[str, Any]]:
    """Two trial editions (内部会话, 内外部会话), like the emulator's ``sample_chat_editions``."""
    return [chat_edition(1, 1, "zhangsan", "lisi"), chat_edition(2, 1, "zhangsan", "wangwu")]


def sample_members() -> list[dict[str, Any]]:
    return [
        {"userid": "zhangsan", "edition_list": [1, 2]},
        {"userid": "wangwu", "edition_list": [2]},
        {"userid": "lisi", "edition_list": [1]},
    ]


@dataclass
class FakeCorp:
    """One corp's install of the suite, as WeCom knows it."""

    corp_id: str
    corp_name: str
    permanent_code: str
    verified: bool = True
    active: bool = True
    chat_editions: list[dict[str, Any]] = field(default_factory=sample_editions)
    """Empty: 数据与智能专区 not authorized (48002)."""
    members: list[dict[str, Any]] = field(default_factory=sample_members)
    agent_id: int = 1000001
    pending_code: str | None = None
    """The code a reset_permanent_code AuthCode will hand out."""

    def auth_corp_info(self) -> dict[str, Any]:
        """v2 ``auth_corp_info`` (no ``corp_wxqrcode``)."""
        info: dict[str, Any] = {
            "corpid": self.corp_id,
            "corp_name": self.corp_name,
            "corp_type": "verified" if self.verified else "unverified",
            "corp_square_logo_url": "https://p.qlogo.cn/bizmail/fake/0",
            "corp_user_max": 200,
        }
        if self.verified:
            info["corp_full_name"] = f"{self.corp_name}有限公司"
        info["verified_end_time"] = 1_780_000_000 if self.verified else 0
        info["subject_type"] = 1
        info["corp_scale"] = "1-50人"
        info["corp_industry"] = "IT服务"
        info["corp_sub_industry"] = "计算机软件/硬件/信息服务"
        if self.verified:
            info["corp_ex_name"] = {"name_list": []}
        return info

    def auth_info(self) -> dict[str, Any]:
        return {
            "agent": [
                {
                    "agentid": self.agent_id,
                    "name": "Authsync",
                    "round_logo_url": "https://wework.qpic.cn/wwpic/fake/round/0",
                    "square_logo_url": "https://wework.qpic.cn/wwpic/fake/square/1",
                    "appid": 1,
                    "auth_mode": 0,
                    "is_customized_app": False,
                    "auth_from_thirdapp": False,
                    "privilege": {
                        "level": 1,
                        "allow_party": [1],
                        "allow_user": [],
                        "allow_tag": [],
                        "extra_party": [],
                        "extra_user": [],
                        "extra_tag": [],
                    },
                }
            ]
        }


@dataclass
class _AuthCode:
    suite_id: str
    corp_id: str
    purpose: Literal["create_auth", "reset_permanent_code"]
    issued_at: float
    used: bool = False


def suite_token_of(suite_id: str) -> str:
    return f"suite-token:{suite_id}"


class FakeWeCom:
    """The :class:`authsync.app.ports.WeComApi` port: WeCom's answers from in-memory corps."""

    def __init__(self, clock: ManualClock, log: CallLog) -> None:
        self._clock = clock
        self._log = log
        self.corps: dict[tuple[str, str], FakeCorp] = {}
        self._auth_codes: dict[str, _AuthCode] = {}
        self._faults: dict[str, list[WeComError]] = {}
        self.before: dict[str, Callable[[], None]] = {}
        """Per method, something that happens just before WeCom answers (a concurrent writer, time passing)."""
        self._serial = 0
        self.corp_tokens_issued = 0

    # .. what a test does to WeCom ................................................................

    def _next(self, prefix: str, width: int) -> str:
        self._serial += 1
        return f"{prefix}{self._serial:0{width}d}"

    def create_auth(self, corp_id: str, *, suite_id: str = SUITE, **corp: Any) -> str:
        """The corp installs the suite (again, if it had cancelled): a fresh 10-minute AuthCode."""
        code = self._next("permcode-", 8)
        existing = self.corps.get((suite_id, corp_id))
        if existing is not None:
            existing.active, existing.permanent_code = True, code
        else:
            corp.setdefault("corp_name", f"测试企业{corp_id[-4:]}")
            self.corps[(suite_id, corp_id)] = FakeCorp(corp_id, permanent_code=code, **corp)
        return self._issue(suite_id, corp_id, "create_auth")

    def reset_permanent_code(self, corp_id: str, *, suite_id: str = SUITE) -> str:
        """代开发 secret reset: an AuthCode whose exchange hands out a new code and kills the old one."""
        self.corps[(suite_id, corp_id)].pending_code = self._next("permcode-", 8)
        return self._issue(suite_id, corp_id, "reset_permanent_code")

    def cancel_auth(self, corp_id: str, *, suite_id: str = SUITE) -> None:
        self.corps[(suite_id, corp_id)].active = False

    def corp(self, corp_id: str, *, suite_id: str = SUITE) -> FakeCorp:
        return self.corps[(suite_id, corp_id)]

    def fail(self, method: str, errcode: int, *, times: int = 1, endpoint: str | None = None) -> None:
        """The next ``times`` calls of ``method`` answer ``errcode`` (the typed error of ``error_for``)."""
        error = error_for(endpoint or method, errcode, "injected")
        self._faults.setdefault(method, []).extend([error] * times)

    def _issue(self, suite_id: str, corp_id: str, purpose: Literal["create_auth", "reset_permanent_code"]) -> str:
        value = self._next("authcode-", 56)  # real AuthCodes are >= 64 characters
        self._auth_codes[value] = _AuthCode(suite_id, corp_id, purpose, self._clock())
        return value

    # .. the port .................................................................................

    def _enter(self, method: str, *args: Any) -> None:
        self._log.add(f"wecom.{method}", *args)
        hook = self.before.pop(method, None)
        if hook is not None:
            hook()
        queued = self._faults.get(method)
        if queued:
            raise queued.pop(0)

    @staticmethod
    def _suite_of(endpoint: str, token: str) -> str:
        if not token.startswith("suite-token:"):
            raise error_for(endpoint, 40082, "invalid suite_access_token")
        return token.removeprefix("suite-token:")

    def _chat_corp(self, endpoint: str, token: str) -> FakeCorp:
        if token.startswith("suite-token:"):
            raise error_for(endpoint, 41001, "access_token missing")  # a suite token on a corp API
        parts = token.split(":")
        if len(parts) != 4 or parts[0] != "corp-token":
            raise error_for(endpoint, 40014, "invalid access_token")
        corp = self.corps.get((parts[1], parts[2]))
        if corp is None or not corp.active or parts[3] != corp.permanent_code:
            raise error_for(endpoint, 40014, "invalid access_token")
        if not corp.chat_editions:
            raise error_for(endpoint, 48002, "api forbidden")
        return corp

    def get_permanent_code(
        self, suite_token: str, auth_code: str, *, v2: bool = True, budget: float | None = None
    ) -> PermanentCodeGrant:
        endpoint = "service/v2/get_permanent_code" if v2 else "service/get_permanent_code"
        self._enter("get_permanent_code", suite_token, auth_code, v2, budget)
        suite_id = self._suite_of(endpoint, suite_token)
        code = self._auth_codes.get(auth_code)
        if code is None or code.used or code.suite_id != suite_id or self._clock() - code.issued_at > AUTH_CODE_TTL:
            raise error_for(endpoint, 40078, "invalid auth_code")
        corp = self.corps[(suite_id, code.corp_id)]
        if not corp.active:
            raise error_for(endpoint, 40078, "invalid auth_code")
        code.used = True
        if code.purpose == "reset_permanent_code" and corp.pending_code is not None:
            corp.permanent_code, corp.pending_code = corp.pending_code, None
        document = {
            "permanent_code": corp.permanent_code,
            "auth_corp_info": {"corpid": corp.corp_id, "corp_name": corp.corp_name},
            "auth_user_info": {
                "userid": "admin01",
                "open_userid": "woFakeOpenUserid01",
                "name": "管理员",
                "avatar": "https://wework.qpic.cn/wwpic/fake/avatar/0",
            },
            "state": "",
        }
        return PermanentCodeGrant.from_document(document, endpoint)

    def get_auth_info(self, suite_token: str, corp_id: str, permanent_code: str, *, v2: bool = True) -> dict[str, Any]:
        endpoint = "service/v2/get_auth_info" if v2 else "service/get_auth_info"
        self._enter("get_auth_info", suite_token, corp_id, permanent_code, v2)
        suite_id = self._suite_of(endpoint, suite_token)
        corp = self.corps.get((suite_id, corp_id))
        if corp is None:
            raise error_for(endpoint, 40013, "invalid corpid")
        if not corp.active or corp.permanent_code != permanent_code:
            raise error_for(endpoint, 40084, "invalid permanent_code")
        info = corp.auth_corp_info()
        if not v2:
            info["corp_wxqrcode"] = f"https://open.work.weixin.qq.com/wwqrcode/fake/{self._clock():.0f}"
        return {"auth_corp_info": info, "auth_info": corp.auth_info()}  # no errcode on success (spec §4)

    def get_corp_token(self, suite_token: str, corp_id: str, permanent_code: str) -> str:
        """Not a port method: what :class:`FakeTokens` calls to issue a corp token (40084 for a dead code)."""
        endpoint = "service/get_corp_token"
        self._enter("get_corp_token", suite_token, corp_id)
        corp = self.corps.get((self._suite_of(endpoint, suite_token), corp_id))
        if corp is None or not corp.active or corp.permanent_code != permanent_code:
            raise error_for(endpoint, 40084, "invalid permanent_code")
        self.corp_tokens_issued += 1
        return f"corp-token:{suite_token.removeprefix('suite-token:')}:{corp_id}:{permanent_code}"

    def get_corp_chat_auth_info(self, corp_token: str) -> dict[str, Any]:
        self._enter("get_corp_chat_auth_info", corp_token)
        corp = self._chat_corp("chatdata/get_corp_auth_info", corp_token)
        return {"errcode": 0, "errmsg": "ok", "auth_edition_list": json.loads(json.dumps(corp.chat_editions))}

    def iter_auth_users(self, corp_token: str, *, limit: int = 1000, max_pages: int = 1000) -> Iterator[dict[str, Any]]:
        self._enter("iter_auth_users", corp_token)
        corp = self._chat_corp("chatdata/get_auth_user_list", corp_token)
        members = [dict(m) for m in corp.members]  # taken now, as a page fetched now
        return iter(members)


# -- credentials -----------------------------------------------------------------------------------------


class FakePermanentCodes:
    """The :class:`authsync.app.ports.PermanentCodes` port: forward-only by ``obtained_at``."""

    def __init__(self, log: CallLog) -> None:
        self._log = log
        self.codes: dict[tuple[str, str], tuple[str, float]] = {}
        self.fail_puts = 0
        """The next this-many puts fail (Secrets Manager unreachable)."""
        self.event_times: dict[tuple[str, str], int | None] = {}
        """The WeCom TimeStamp of the install that stored each code."""
        self.cached: dict[tuple[str, str], str] = {}
        """What this container's cache still answers (a code rotated by another instance); ``force`` reads past it."""

    def get(self, suite_id: str, corp_id: str, *, force: bool = False) -> str | None:
        self._log.add("codes.get", suite_id, corp_id, force)
        if force:
            self.cached.pop((suite_id, corp_id), None)
        elif (suite_id, corp_id) in self.cached:
            return self.cached[(suite_id, corp_id)]
        stored = self.codes.get((suite_id, corp_id))
        return None if stored is None else stored[0]

    def put(
        self, suite_id: str, corp_id: str, permanent_code: str, obtained_at: float, *, event_time: int | None = None
    ) -> bool:
        self._log.add("codes.put", suite_id, corp_id, obtained_at)
        if self.fail_puts:
            self.fail_puts -= 1
            raise RuntimeError("Secrets Manager: ServiceUnavailable")
        stored = self.codes.get((suite_id, corp_id))
        if stored is not None and not obtained_at > stored[1]:
            return False  # an older exchange never wins
        self.codes[(suite_id, corp_id)] = (permanent_code, obtained_at)
        self.event_times[(suite_id, corp_id)] = event_time
        return stored is not None

    def delete(self, suite_id: str, corp_id: str, *, cancelled_at_event: int | None = None) -> None:
        installed = self.event_times.get((suite_id, corp_id))
        if cancelled_at_event is not None and installed is not None and installed > cancelled_at_event:
            return  # a later install's code stays
        self.codes.pop((suite_id, corp_id), None)


class FakeTokens:
    """The :class:`authsync.app.ports.AccessTokens` port over :class:`FakeWeCom` and :class:`FakePermanentCodes`."""

    def __init__(self, wecom: FakeWeCom, codes: FakePermanentCodes, log: CallLog) -> None:
        self._wecom = wecom
        self._codes = codes
        self._log = log
        self.corp_tokens: dict[tuple[str, str], str] = {}

    def with_suite_token(self, suite_id: str, call: Callable[[str], T]) -> T:
        self._log.add("tokens.with_suite_token", suite_id)
        try:
            return call(suite_token_of(suite_id))
        except WeComTokenError as exc:
            if exc.token_kind != "suite":
                raise
            return call(suite_token_of(suite_id))

    def _corp_token(self, suite_id: str, corp_id: str, *, renew: bool = False) -> str:
        token = None if renew else self.corp_tokens.get((suite_id, corp_id))
        if token is None:
            code = self._codes.codes.get((suite_id, corp_id))
            if code is None:
                raise CorpNotAuthorizedError(f"no permanent code for corp {corp_id} of suite {suite_id}")
            token = self._wecom.get_corp_token(suite_token_of(suite_id), corp_id, code[0])
            self.corp_tokens[(suite_id, corp_id)] = token
        return token

    def with_corp_token(self, suite_id: str, corp_id: str, call: Callable[[str], T]) -> T:
        self._log.add("tokens.with_corp_token", suite_id, corp_id)
        token = self._corp_token(suite_id, corp_id)
        try:
            return call(token)
        except WeComTokenError as exc:
            if exc.token_kind != "corp":
                raise
            return call(self._corp_token(suite_id, corp_id, renew=True))

    def forget_corp(self, suite_id: str, corp_id: str, *, cancelled_at_event: int | None = None) -> None:
        self._log.add("tokens.forget_corp", suite_id, corp_id)
        self._codes.delete(suite_id, corp_id, cancelled_at_event=cancelled_at_event)
        self.corp_tokens.pop((suite_id, corp_id), None)

    def forget_corp_token(self, suite_id: str, corp_id: str) -> None:
        self._log.add("tokens.forget_corp_token", suite_id, corp_id)
        self.corp_tokens.pop((suite_id, corp_id), None)


# -- snapshots -----------------------------------------------------------------------------------------


@dataclass
class _Kind:
    version: int = 0
    document: dict[str, Any] | None = None
    fetched_at: float | None = None
    derived: dict[str, Any] | None = None
    fetches: int = 0


@dataclass
class _Corp:
    status: str = "active"
    kinds: dict[str, _Kind] = field(
        default_factory=lambda: {kind: _Kind() for kind in ("install", "auth_info", "chatdata", "license", "orders")}
    )
    cancelled_at: float | None = None
    expires_at: int | None = None
    activations: int = 1
    cancellations: int = 0
    lifecycle_at: float | None = None


@dataclass(frozen=True)
class FakeCorpState:
    """A read of one corp (an :class:`authsync.app.ports.CorpStateView`, plus what tests look at)."""

    status: str
    auth_info_version: int
    auth_info_fetched_at: float | None
    chatdata_version: int
    chatdata_fetched_at: float | None
    auth_info: dict[str, Any] | None = None
    chatdata: dict[str, Any] | None = None
    verification: dict[str, Any] | None = None
    chatdata_summary: dict[str, Any] | None = None
    expires_at: int | None = None
    activations: int = 0
    auth_info_fetches: int = 0
    cancelled_at: float | None = None
    lifecycle_at: float | None = None
    install: dict[str, Any] | None = None
    """The ``install`` kind's document: the grant's context."""
    kinds: dict[str, KindState] = field(default_factory=dict)
    """Every kind's part, as :class:`authsync.domain.corp_state.CorpState` holds it."""

    def kind(self, kind: str) -> KindState:
        return self.kinds.get(kind) or KindState()


@dataclass(frozen=True)
class FakeRecordResult:
    version: int
    changed: bool
    stale: bool = False
    ignored: bool = False
    reactivated: bool = False
    superseded: bool = False


@dataclass(frozen=True)
class FakeCancelResult:
    already_cancelled: bool
    expires_at: int
    superseded: bool = False


def _older(event_at: float | None, corp: _Corp | None) -> bool:
    """The real store's rule 0: a lifecycle event older than the corp's last one changes nothing."""
    last = corp.lifecycle_at if corp is not None else None
    return event_at is not None and last is not None and event_at < last


def _json(value: Any) -> Any:
    """What the real store keeps of a value: its JSON form (pydantic models dumped)."""

    def default(item: Any) -> Any:
        dump = getattr(item, "model_dump", None)
        if callable(dump):
            return dump(mode="json")
        raise TypeError(f"{type(item).__name__} is not JSON serializable")

    return json.loads(json.dumps(value, default=default, allow_nan=False))


class FakeSnapshots:
    """The :class:`authsync.app.ports.Snapshots` port: the write rules the use cases observe, in a dict."""

    def __init__(self, log: CallLog) -> None:
        self._log = log
        self.corps: dict[tuple[str, str], _Corp] = {}
        self.results: list[FakeRecordResult] = []

    def seed(
        self,
        corp_id: str,
        *,
        suite_id: str = SUITE,
        status: str = "active",
        auth_info_fetched_at: float | None = None,
        chatdata_fetched_at: float | None = None,
        auth_info_version: int = 1,
        chatdata_version: int = 1,
    ) -> None:
        """A corp as an earlier run left it (documents are placeholders)."""
        corp = _Corp(status=status)
        if auth_info_fetched_at is not None:
            corp.kinds["auth_info"] = _Kind(auth_info_version, {"seeded": True}, auth_info_fetched_at, None, 1)
        if chatdata_fetched_at is not None:
            corp.kinds["chatdata"] = _Kind(chatdata_version, {"seeded": True}, chatdata_fetched_at, None, 1)
        self.corps[(suite_id, corp_id)] = corp

    def get(self, suite_id: str, corp_id: str) -> FakeCorpState | None:
        self._log.add("snapshots.get", suite_id, corp_id)
        return self.peek(corp_id, suite_id=suite_id)

    def peek(self, corp_id: str, *, suite_id: str = SUITE) -> FakeCorpState | None:
        """Like ``get``, without logging a call (for assertions)."""
        corp = self.corps.get((suite_id, corp_id))
        if corp is None:
            return None
        auth, chat = corp.kinds["auth_info"], corp.kinds["chatdata"]
        return FakeCorpState(
            status=corp.status,
            auth_info_version=auth.version,
            auth_info_fetched_at=auth.fetched_at,
            chatdata_version=chat.version,
            chatdata_fetched_at=chat.fetched_at,
            auth_info=auth.document,
            chatdata=chat.document,
            verification=(auth.derived or {}).get("verification"),
            chatdata_summary=(chat.derived or {}).get("chatdata"),
            expires_at=corp.expires_at,
            activations=corp.activations,
            auth_info_fetches=auth.fetches,
            cancelled_at=corp.cancelled_at,
            lifecycle_at=corp.lifecycle_at,
            install=corp.kinds["install"].document,
            kinds={
                name: KindState(
                    part.version, part.document, part.fetched_at, derived=part.derived, fetches=part.fetches
                )
                for name, part in corp.kinds.items()
            },
        )

    def record(  # SnapshotStore.record's call shape
        self,
        suite_id: str,
        corp_id: str,
        kind: Literal["install", "auth_info", "chatdata", "license", "orders"],
        document: Mapping[str, Any],
        fetched_at: float,
        derived: Mapping[str, Any] | None = None,
        *,
        reactivate: bool = False,
        lifecycle_at: float | None = None,
    ) -> FakeRecordResult:
        self._log.add("snapshots.record", suite_id, corp_id, kind, fetched_at, reactivate)
        result = self._record(
            suite_id, corp_id, kind, _json(strip_secrets(document)), fetched_at, derived, reactivate, lifecycle_at
        )
        self.results.append(result)
        return result

    def _record(
        self,
        suite_id: str,
        corp_id: str,
        kind: str,
        document: dict[str, Any],
        fetched_at: float,
        derived: Mapping[str, Any] | None,
        reactivate: bool,
        lifecycle_at: float | None,
    ) -> FakeRecordResult:
        corp = self.corps.get((suite_id, corp_id))
        reactivating = False
        if _older(lifecycle_at, corp):  # lifecycle events in WeCom's TimeStamp order, ties by arrival
            return FakeRecordResult(corp.kinds[kind].version if corp else 0, changed=False, superseded=True)
        if corp is None:
            corp = _Corp()
        elif corp.status == "cancelled":
            if not reactivate:
                return FakeRecordResult(corp.kinds[kind].version, changed=False, ignored=True)
            reactivating = True
        current = corp.kinds[kind]
        if current.fetched_at is not None and fetched_at < current.fetched_at:
            return FakeRecordResult(current.version, changed=False, stale=True)
        changed = current.document != document
        if current.fetched_at is not None and fetched_at == current.fetched_at:
            return FakeRecordResult(current.version, changed=False, stale=changed)  # redelivered, or first wins
        if reactivating:
            corp.status, corp.cancelled_at, corp.expires_at = "active", None, None
            corp.activations += 1
        version = current.version + 1 if changed else current.version
        if lifecycle_at is not None:
            corp.lifecycle_at = lifecycle_at
        corp.kinds[kind] = _Kind(
            version, document, fetched_at, _json(dict(derived)) if derived is not None else None, current.fetches + 1
        )
        self.corps[(suite_id, corp_id)] = corp
        return FakeRecordResult(version, changed=changed, reactivated=reactivating)

    def mark_cancelled(
        self, suite_id: str, corp_id: str, at: float, retention_seconds: int, *, lifecycle_at: float | None = None
    ) -> FakeCancelResult:
        self._log.add("snapshots.mark_cancelled", suite_id, corp_id, at, retention_seconds)
        corp = self.corps.get((suite_id, corp_id))
        if _older(lifecycle_at, corp):
            return FakeCancelResult(already_cancelled=False, expires_at=0, superseded=True)
        if corp is not None and corp.status == "cancelled":
            if lifecycle_at is not None:
                corp.lifecycle_at = lifecycle_at  # a later cancellation's time (rule 0)
            return FakeCancelResult(already_cancelled=True, expires_at=corp.expires_at or 0)
        corp = corp or _Corp(activations=0)
        corp.status, corp.cancelled_at = "cancelled", at
        if lifecycle_at is not None:
            corp.lifecycle_at = lifecycle_at
        corp.expires_at = math.ceil(at + retention_seconds)
        corp.cancellations += 1
        for kind in corp.kinds.values():  # the data goes; version numbers and fetch times stay
            kind.document, kind.derived = None, None
        self.corps[(suite_id, corp_id)] = corp
        return FakeCancelResult(already_cancelled=False, expires_at=corp.expires_at)


# -- the chatdata queue ------------------------------------------------------------------------------------


class RecordingChatdataRequests:
    """The :class:`authsync.app.ports.ChatdataRequests` port: what would be sent, in order."""

    def __init__(self, log: CallLog) -> None:
        self._log = log
        self.requests: list[ChatdataRequest] = []

    def request(self, item: ChatdataRequest) -> None:
        self._log.add("chatdata.request", item.suite_id, item.corp_id, item.requested_at)
        self.requests.append(item)


# -- the exchange journal -----------------------------------------------------------------------------------


class FakeJournal:
    """The :class:`authsync.app.ports.ExchangeJournal` port in a dict (the codes kept as they are: no KMS here)."""

    def __init__(self, log: CallLog, clock: ManualClock) -> None:
        self._log = log
        self._clock = clock
        self.entries: dict[tuple[str, str], JournalEntry] = {}
        self.deadlines: list[float] = []
        self._failures = 0
        self.sealing_down = False
        """KMS unavailable: :meth:`check_sealing` raises (and so would sealing an entry)."""

    def fail(self, times: int = 1) -> None:
        """The next ``times`` records fail as if DynamoDB or KMS refused until the deadline."""
        self._failures += times

    def check_sealing(self, suite_id: str) -> None:
        self._log.add("journal.check_sealing", suite_id)
        if self.sealing_down:
            raise SealError("Encrypt", "KMSInternalException", transient=True)

    def get(self, suite_id: str, key: str) -> JournalEntry | None:
        self._log.add("journal.get", suite_id, key)
        return self.entries.get((suite_id, key))

    def record(self, entry: JournalEntry, *, deadline: float) -> JournalEntry:
        self._log.add("journal.record", entry.suite_id, entry.key, entry.corp_id)
        self.deadlines.append(deadline - self._clock())
        if self._failures:
            self._failures -= 1
            raise DeadlineExceededError("journal put failed 9 time(s) until the deadline (ThrottlingException)")
        return self.entries.setdefault((entry.suite_id, entry.key), entry)

    def close(self, entry: JournalEntry, status: JournalStatus) -> None:
        self._log.add("journal.close", entry.suite_id, entry.key, status)
        stored = self.entries[(entry.suite_id, entry.key)]
        self.entries[(entry.suite_id, entry.key)] = stored.with_status(status)

    def open_keys(self, suite_id: str = SUITE) -> list[str]:
        return [key for (suite, key), entry in self.entries.items() if suite == suite_id and entry.open]


# -- all of it, and messages -------------------------------------------------------------------------------


@dataclass
class Fakes:
    """One of each fake, sharing a clock and a call log, and the two use cases built on them."""

    clock: ManualClock = field(default_factory=ManualClock)
    log: CallLog = field(default_factory=CallLog)

    def __post_init__(self) -> None:
        self.wecom = FakeWeCom(self.clock, self.log)
        self.codes = FakePermanentCodes(self.log)
        self.tokens = FakeTokens(self.wecom, self.codes, self.log)
        self.snapshots = FakeSnapshots(self.log)
        self.chatdata = RecordingChatdataRequests(self.log)
        self.journal = FakeJournal(self.log, self.clock)

    def authorization_sync(self) -> AuthorizationSync:
        return AuthorizationSync(
            client=self.wecom,
            tokens=self.tokens,
            permanent_codes=self.codes,
            snapshots=self.snapshots,
            chatdata=self.chatdata,
            journal=self.journal,
            clock=self.clock,
        )

    def chatdata_sync(self) -> ChatdataSync:
        return ChatdataSync(client=self.wecom, tokens=self.tokens, snapshots=self.snapshots, clock=self.clock)


def callback(info_type: str, sent_at: float, *, suite_id: str = SUITE, **fields: str | int) -> AuthMessage:
    """An auth-events message carrying a decrypted callback document, as callback-ingest enqueues it."""
    elements = {"SuiteId": suite_id, "InfoType": info_type, "TimeStamp": int(sent_at), **fields}
    body = "".join(
        f"<{name}>{value}</{name}>" if isinstance(value, int) else f"<{name}><![CDATA[{value}]]></{name}>"
        for name, value in elements.items()
    )
    corp = fields.get("AuthCorpId")
    return AuthMessage("callback", suite_id, str(corp) if corp else None, f"<xml>{body}</xml>", sent_at)


def raw_callback(xml: str, sent_at: float, *, suite_id: str = SUITE) -> AuthMessage:
    return AuthMessage("callback", suite_id, None, xml, sent_at)


def resume(entry_key: str, sent_at: float, *, suite_id: str = SUITE) -> AuthMessage:
    body = json.dumps({"kind": "resume", "suite_id": suite_id, "entry_key": entry_key})
    return AuthMessage("resume", suite_id, None, body, sent_at, entry_key=entry_key)


def reconcile(corp_id: str, sent_at: float, *, suite_id: str = SUITE) -> AuthMessage:
    body = json.dumps({"kind": "reconcile", "suite_id": suite_id, "corp_id": corp_id})
    return AuthMessage("reconcile", suite_id, corp_id, body, sent_at)
