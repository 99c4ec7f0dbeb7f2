"""Token machinery against moto (Secrets Manager, DynamoDB leases) and the WeCom emulator over HTTP."""

from __future__ import annotations

import threading

import boto3
import pytest

from authsync.aws.credentials import ForwardOnlySecrets, SecretNames, WriteOutcome
from authsync.aws.leases import Leases
from authsync.aws.tokens import CorpNotAuthorizedError, ProviderNotConfiguredError, StoredToken, TicketMissingError
from authsync.settings import FetchSettings, load
from authsync.wecom.entitlements import EntitlementsApi
from authsync.wecom.errors import WeComTokenError
from authsync.wiring import Pipeline, build_pipeline
from authsync_dev.emulator import Clock, Emulator, sample_chat_editions
from authsync_dev.world import World, build_world, suite_config_document
from tests.atomic import atomic_requests
from tests.authsync.conftest import START


@pytest.fixture
def world(aws: None, wecom: Emulator) -> World:
    built = build_world(wecom)
    built.deliver_ticket()
    return built


def pipeline(world: World, clock: Clock) -> Pipeline:
    """One Lambda container's worth of objects (own caches, own lease owner)."""
    settings = load(FetchSettings, world.environment("AuthInfoFunction"))
    return build_pipeline(settings, clock=clock.now, sleep=lambda _s: None)


def install(world: World, corp_id: str, p: Pipeline, *, verified: bool = False) -> None:
    """A corp installs the app (with chatdata); we exchange its AuthCode as auth-info would and keep the code."""
    world.wecom.add_corp(corp_id, verified=verified)
    code = world.wecom.create_auth(
        world.suite.suite_id, corp_id, push=False, chat_editions=sample_chat_editions()
    ).auth_code
    assert code is not None
    grant = p.tokens.with_suite_token(world.suite.suite_id, lambda t: p.client.get_permanent_code(t, code))
    p.permanent_codes.put(world.suite.suite_id, corp_id, grant.permanent_code, world.wecom.now())


def test_suite_token_is_fetched_once_and_served_from_the_warm_cache(world: World, clock: Clock) -> None:
    p = pipeline(world, clock)
    calls: list[str] = []
    secrets = p.tokens._suites._secrets.client  # type: ignore[attr-defined]  # the pipeline's one SM client
    secrets.meta.events.register(
        "provide-client-params.secrets-manager.GetSecretValue", lambda params, **_: calls.append(params["SecretId"])
    )
    first = p.tokens.suite_token(world.suite.suite_id)
    assert p.tokens.suite_token(world.suite.suite_id) == first  # reads back what was stored, once
    reads_after_first = len(calls)
    for _ in range(50):
        assert p.tokens.suite_token(world.suite.suite_id) == first
    assert world.wecom.calls("service/get_suite_token") == 1
    assert len(calls) == reads_after_first  # 50 more uses, no Secrets Manager call


def test_a_second_container_reuses_the_stored_token(world: World, clock: Clock) -> None:
    first = pipeline(world, clock).tokens.suite_token(world.suite.suite_id)
    second = pipeline(world, clock).tokens.suite_token(world.suite.suite_id)
    assert first == second
    assert world.wecom.calls("service/get_suite_token") == 1


def test_concurrent_renewal_from_many_containers_makes_one_wecom_call(world: World, clock: Clock) -> None:
    containers = [pipeline(world, clock) for _ in range(8)]
    install(world, "wwcorpconcurrent01", containers[0])
    world.wecom.reset_counters()
    barrier = threading.Barrier(len(containers))
    suite_tokens: list[str] = []
    corp_tokens: list[str] = []
    errors: list[BaseException] = []

    def work(p: Pipeline) -> None:
        try:
            barrier.wait()
            suite_tokens.append(p.tokens.suite_token(world.suite.suite_id))
            corp_tokens.append(p.tokens.corp_token(world.suite.suite_id, "wwcorpconcurrent01"))
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(p,)) for p in containers]
    with atomic_requests():  # AWS serves each request atomically; moto in threads does not
        for t in threads:
            t.start()
        for t in threads:
            t.join(timeout=60)
    assert errors == []
    assert len(set(suite_tokens)) == 1
    assert len(suite_tokens) == 8
    assert len(set(corp_tokens)) == 1
    assert len(corp_tokens) == 8
    assert world.wecom.calls("service/get_suite_token") == 0  # already held since install()
    assert world.wecom.calls("service/get_corp_token") == 1


def test_a_renewal_finished_by_another_container_before_we_take_the_lease_is_used(
    world: World, clock: Clock, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The fixed-order twin of the race above, for the re-check under the lease in ``TokenStore.get``.

    Container A reads a token that needs renewal; container B then renews it completely
    (lease, WeCom, write, release); only then does A take the lease. A must find B's token
    on its re-read under the lease and return it without asking WeCom again. The order is
    forced by running B from inside A's ``Leases.acquire``, not left to thread timing.
    """
    suite_id = world.suite.suite_id
    a, b = pipeline(world, clock), pipeline(world, clock)
    first = a.tokens.suite_token(suite_id)  # A's warm cache holds it; so does Secrets Manager
    clock.advance(7200 + 1)  # expired: the next use must renew, and WeCom issues a new token
    world.deliver_ticket()
    world.wecom.reset_counters()
    lease = f"token:{a.tokens._names.suite_token(suite_id)}"
    leases_a = a.tokens._store._leases
    real_acquire = leases_a.acquire
    events: list[str] = []
    renewed_by_b: list[str] = []

    def acquire_after_b_renews(key: str, ttl: float) -> bool:
        if key == lease and not renewed_by_b:
            # A has read the stale token (cached, then forced) and is about to take the lease.
            assert world.wecom.calls("service/get_suite_token") == 0
            events.append("B renews")
            renewed_by_b.append(b.tokens.suite_token(suite_id))
            assert world.wecom.calls("service/get_suite_token") == 1  # B went all the way to WeCom
        taken = real_acquire(key, ttl)
        events.append(f"A acquires: {taken}")
        return taken

    monkeypatch.setattr(leases_a, "acquire", acquire_after_b_renews)
    token_a = a.tokens.suite_token(suite_id)
    assert events == ["B renews", "A acquires: True"]  # B released its lease; A got it at once
    assert renewed_by_b[0] != first
    assert token_a == renewed_by_b[0]
    assert world.wecom.calls("service/get_suite_token") == 1  # B's renewal only: A did not call WeCom


def test_tokens_are_renewed_ahead_of_expiry(world: World, clock: Clock) -> None:
    p = pipeline(world, clock)
    first = p.tokens.suite_token(world.suite.suite_id)
    clock.advance(7200 - 900)  # 15 minutes left: still fine (the margin is 10)
    assert p.tokens.suite_token(world.suite.suite_id) == first
    assert world.wecom.calls("service/get_suite_token") == 1
    clock.advance(400)  # under 9 minutes left: renewed now, before WeCom would reject it
    world.deliver_ticket()
    p.tokens.suite_token(world.suite.suite_id)
    assert world.wecom.calls("service/get_suite_token") == 2


def test_expired_token_mid_run_is_invalidated_refreshed_and_retried_once(world: World, clock: Clock) -> None:
    p = pipeline(world, clock)
    install(world, "wwcorpexpiry000001", p)
    suite_id = world.suite.suite_id
    before = p.tokens.corp_token(suite_id, "wwcorpexpiry000001")
    world.wecom.invalidate_tokens(corpid="wwcorpexpiry000001")  # WeCom ends tokens early (spec §4)
    world.wecom.reset_counters()
    info = p.tokens.with_corp_token(suite_id, "wwcorpexpiry000001", p.client.get_corp_chat_auth_info)
    assert info["auth_edition_list"]
    assert world.wecom.calls("service/get_corp_token") == 1
    assert p.tokens.corp_token(suite_id, "wwcorpexpiry000001") != before


def test_a_token_error_that_persists_after_one_refresh_is_raised(world: World, clock: Clock) -> None:
    p = pipeline(world, clock)
    install(world, "wwcorppersist00001", p)
    attempts: list[str] = []

    def always_invalid(token: str) -> None:
        attempts.append(token)
        raise WeComTokenError("chatdata/get_corp_auth_info", 40014, "invalid access_token")

    with pytest.raises(WeComTokenError):
        p.tokens.with_corp_token(world.suite.suite_id, "wwcorppersist00001", always_invalid)
    assert len(attempts) == 2  # once, then once more after a refresh: never a loop


def test_an_older_token_never_overwrites_a_newer_one(world: World) -> None:
    env = world.environment("AuthInfoFunction")
    names = SecretNames(env["SUITE_SECRET_PREFIX"], env["CORP_SECRET_PREFIX"])
    writer = ForwardOnlySecrets(boto3.client("secretsmanager"), description="test")
    name = names.suite_token(world.suite.suite_id)
    newer = StoredToken("newer-token", START + 100, START + 7300, START + 7000)
    older = StoredToken("older-token", START + 50, START + 7250, START + 6950)

    def later(new: dict[str, float], old: dict[str, float]) -> bool:
        return float(new["obtained_at"]) > float(old["obtained_at"])

    assert writer.write(name, newer.to_document(), later).outcome is WriteOutcome.STORED
    assert writer.write(name, older.to_document(), later).outcome is WriteOutcome.NOT_NEWER
    stored = writer.read(name)
    assert stored is not None
    assert stored[1]["token"] == "newer-token"


def test_no_ticket_yet_is_a_clear_retryable_error(aws: None, wecom: Emulator, clock: Clock) -> None:
    world = build_world(wecom)  # no ticket delivered
    with pytest.raises(TicketMissingError):
        pipeline(world, clock).tokens.suite_token(world.suite.suite_id)
    assert wecom.calls("service/get_suite_token") == 0


def test_unknown_corp_has_no_token(world: World, clock: Clock) -> None:
    with pytest.raises(CorpNotAuthorizedError):
        pipeline(world, clock).tokens.corp_token(world.suite.suite_id, "wwnosuchcorp000001")


def test_customized_suite_gets_corp_tokens_from_gettoken(aws: None, wecom: Emulator, clock: Clock) -> None:
    world = build_world(wecom, kind="customized")
    world.deliver_ticket()
    p = pipeline(world, clock)
    install(world, "wwcustomized000001", p)
    p.tokens.corp_token(world.suite.suite_id, "wwcustomized000001")
    assert wecom.calls("gettoken") == 1
    assert wecom.calls("service/get_corp_token") == 0


def test_lease_is_exclusive_until_released_or_expired(world: World, clock: Clock) -> None:
    table = world.environment("AuthInfoFunction")["LEASES_TABLE"]
    one, two = (
        Leases(boto3.client("dynamodb"), table, clock=clock.now),
        Leases(boto3.client("dynamodb"), table, clock=clock.now),
    )
    assert one.acquire("k", 10)
    assert not two.acquire("k", 10)
    one.release("k")
    assert two.acquire("k", 10)
    clock.advance(11)
    assert one.acquire("k", 10)  # two's lease lapsed
    two.release("k")  # not two's any more: must not remove one's lease
    assert not two.acquire("k", 10)


def test_token_values_never_appear_in_reprs(world: World, clock: Clock) -> None:
    p = pipeline(world, clock)
    token = p.tokens.suite_token(world.suite.suite_id)
    stored = p.tokens._store._read(p.tokens._names.suite_token(world.suite.suite_id), force=True)
    assert token not in repr(stored)


def test_a_renewal_that_returns_the_same_token_rechecks_in_minutes_not_per_call(world: World, clock: Clock) -> None:
    p = pipeline(world, clock)
    first = p.tokens.suite_token(world.suite.suite_id)
    clock.advance(7200 - 500)  # inside the renewal window; WeCom still hands back the same token
    world.deliver_ticket()  # WeCom pushes a ticket every 10 minutes meanwhile
    assert p.tokens.suite_token(world.suite.suite_id) == first
    assert world.wecom.calls("service/get_suite_token") == 2
    for _ in range(20):
        p.tokens.suite_token(world.suite.suite_id)
    assert world.wecom.calls("service/get_suite_token") == 2  # no call per use
    clock.advance(301)
    world.deliver_ticket()
    p.tokens.suite_token(world.suite.suite_id)
    assert world.wecom.calls("service/get_suite_token") == 3  # one recheck after five minutes
    clock.advance(300)  # expired now: a new token
    world.deliver_ticket()
    assert p.tokens.suite_token(world.suite.suite_id) != first


def test_a_stale_cached_code_is_re_read_once_after_a_secret_reset_by_another_container(
    aws: None, wecom: Emulator, clock: Clock
) -> None:
    """代开发 secret reset: container A rotated the code; container B's cache still holds the old one (40001)."""
    world = build_world(wecom, kind="customized")
    world.deliver_ticket()
    corp_id = "wwcustomized000002"
    a, b = pipeline(world, clock), pipeline(world, clock)
    install(world, corp_id, a)
    b.permanent_codes.get(world.suite.suite_id, corp_id)  # B caches the current code
    code = wecom.reset_permanent_code(world.suite.suite_id, corp_id, push=False).auth_code
    assert code is not None
    grant = a.tokens.with_suite_token(world.suite.suite_id, lambda t: a.client.get_permanent_code(t, code))
    a.permanent_codes.put(world.suite.suite_id, corp_id, grant.permanent_code, wecom.now() + 1)
    wecom.reset_counters()

    b.tokens.corp_token(world.suite.suite_id, corp_id)

    counters = wecom.counters()["gettoken"]
    assert (counters.calls, counters.ok, dict(counters.errors)) == (2, 1, {40001: 1})  # stale code, then fresh


def test_a_dead_code_that_is_also_the_stored_one_is_raised_after_one_re_read(world: World, clock: Clock) -> None:
    from authsync.wecom.errors import WeComAuthorizationInvalidError

    p = pipeline(world, clock)
    install(world, "wwcorpdeadcode0001", p)
    world.wecom.cancel_auth(world.suite.suite_id, "wwcorpdeadcode0001", push=False)
    world.wecom.reset_counters()

    with pytest.raises(WeComAuthorizationInvalidError):
        p.tokens.corp_token(world.suite.suite_id, "wwcorpdeadcode0001")
    assert world.wecom.calls("service/get_corp_token") == 1  # the re-read found the same code: no second call


def test_a_minimum_validity_renews_a_token_with_less_left_and_once_per_window(world: World, clock: Clock) -> None:
    p = pipeline(world, clock)
    install(world, "wwcorpminvalid0001", p)
    suite_id, corp_id = world.suite.suite_id, "wwcorpminvalid0001"
    first = p.tokens.corp_access_token(suite_id, corp_id)
    world.wecom.reset_counters()
    clock.advance(7200 - 700)  # 700 s left, outside the 600 s margin: good without a minimum
    assert p.tokens.corp_access_token(suite_id, corp_id, min_validity=600).value == first.value
    assert world.wecom.calls("service/get_corp_token") == 0
    # Asking for 800 s renews now; WeCom hands back the same token (it still lives).
    again = p.tokens.corp_access_token(suite_id, corp_id, min_validity=800)
    assert again.value == first.value
    assert again.expires_at == pytest.approx(first.expires_at, abs=1)
    assert world.wecom.calls("service/get_corp_token") == 1
    # ⚠️ WeCom was asked inside the window: no new token exists before this one expires, so no call per use.
    for _ in range(5):
        assert p.tokens.corp_access_token(suite_id, corp_id, min_validity=800).value == first.value
    assert world.wecom.calls("service/get_corp_token") == 1
    assert p.tokens.corp_token(suite_id, corp_id) == first.value  # the default path is unchanged


def test_before_fetch_runs_only_when_wecom_is_asked_and_can_refuse(world: World, clock: Clock) -> None:
    p = pipeline(world, clock)
    install(world, "wwcorpbeforefetch1", p)
    suite_id, corp_id = world.suite.suite_id, "wwcorpbeforefetch1"
    asked: list[str] = []
    token = p.tokens.corp_access_token(suite_id, corp_id, before_fetch=lambda: asked.append("fetch"))
    assert asked == ["fetch"]
    p.tokens.corp_access_token(suite_id, corp_id, before_fetch=lambda: asked.append("fetch"))
    assert asked == ["fetch"]  # stored token good: WeCom not asked

    class Refused(Exception):
        pass

    def refuse() -> None:
        raise Refused

    world.wecom.reset_counters()
    with pytest.raises(Refused):
        p.tokens.corp_access_token(suite_id, corp_id, not_value=token.value, before_fetch=refuse)
    assert world.wecom.calls("service/get_corp_token") == 0
    # The refusal released the renewal lease: the next caller renews at once.
    assert p.tokens.corp_access_token(suite_id, corp_id, not_value=token.value).value
    assert world.wecom.calls("service/get_corp_token") == 1


def test_the_provider_token_is_single_flight_across_containers_and_accepted_by_wecom(
    world: World, clock: Clock
) -> None:
    containers = [pipeline(world, clock) for _ in range(6)]
    install(world, "wwcorpprovider0001", containers[0])
    barrier = threading.Barrier(len(containers))
    tokens: list[str] = []
    errors: list[BaseException] = []

    def work(p: Pipeline) -> None:
        try:
            barrier.wait()
            tokens.append(p.tokens.provider_token(world.suite.suite_id))
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(p,)) for p in containers]
    with atomic_requests():
        for t in threads:
            t.start()
        for t in threads:
            t.join(timeout=60)
    assert errors == []
    assert len(tokens) == 6
    assert len(set(tokens)) == 1
    assert world.wecom.calls("service/get_provider_token") == 1
    api = EntitlementsApi(containers[0].client)
    assert api.open_corpid(tokens[0], "wwcorpprovider0001") == world.wecom.open_corpid("wwcorpprovider0001")


def test_a_provider_token_wecom_ended_is_renewed_once_and_the_call_retried(world: World, clock: Clock) -> None:
    p = pipeline(world, clock)
    install(world, "wwc1", p)
    api = EntitlementsApi(p.client)
    first = p.tokens.provider_token(world.suite.suite_id)
    world.wecom.invalidate_tokens(kind="provider")
    got = p.tokens.with_provider_token(world.suite.suite_id, lambda token: (token, api.open_corpid(token, "wwc1")))
    assert got[0] != first
    assert world.wecom.calls("service/get_provider_token") == 2


def test_a_suite_without_provider_credentials_is_a_clear_error_and_asks_wecom_nothing(
    world: World, clock: Clock
) -> None:
    names = SecretNames(world.environment("AuthInfoFunction")["SUITE_SECRET_PREFIX"])
    without = world.suite.model_copy(update={"provider_secret": None})
    boto3.client("secretsmanager").put_secret_value(
        SecretId=names.config(world.suite.suite_id), SecretString=suite_config_document(without)
    )
    with pytest.raises(ProviderNotConfiguredError, match="provider_corpid and provider_secret"):
        pipeline(world, clock).tokens.provider_token(world.suite.suite_id)
    assert world.wecom.calls("service/get_provider_token") == 0
