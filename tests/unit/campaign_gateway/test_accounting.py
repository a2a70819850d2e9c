"""Accounting records -> exact per-IP, per-provider, per-local-day totals."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta, timezone
from zoneinfo import ZoneInfo

import pytest

from campaign_gateway.domain.accounting import (
    AccountingAggregator,
    AccountingRecord,
    BounceClass,
    DayTotals,
    Origin,
    Outcome,
    RecordType,
    TotalsKey,
    bounce_class,
    classify_deferral,
    local_day,
    origin_keys,
    record_identity,
)
from campaign_gateway.domain.provider_replies import ReplyClass
from campaign_gateway.domain.providers import ProviderGroup

G = ProviderGroup
PARIS = ZoneInfo("Europe/Paris")
IP_A, IP_B = "192.0.2.1", "192.0.2.2"
VMTA_A, VMTA_B = "vmta-192-0-2-1", "vmta-192-0-2-2"
JAN5, JAN6 = date(2026, 1, 5), date(2026, 1, 6)


def at(day: int, hour: int, minute: int = 0) -> datetime:
    return datetime(2026, 1, day, hour, minute, tzinfo=UTC)


def rec(
    kind: RecordType,
    rcpt: str,
    *,
    queued: datetime | None,
    logged: datetime | None = None,
    vmta: str = VMTA_A,
    diag: str = "",
    cat: str = "",
    msgid: str = "",
    orig: str = "",
    env: str = "",
    source_ip: str = "",
) -> AccountingRecord:
    return AccountingRecord(
        type=kind,
        time_logged=logged or (queued + timedelta(minutes=1) if queued else at(5, 12)),
        time_queued=queued,
        orig=orig or f"bounce+{rcpt.replace('@', '=')}@mail.example.com",
        rcpt=rcpt,
        vmta=vmta,
        dsn_status="",
        dsn_diag=diag,
        bounce_cat=cat,
        env_id=env,
        job_id="",
        message_id=msgid,
        dlv_source_ip=source_ip,
    )


D, B, T, RB, F = (
    RecordType.DELIVERED,
    RecordType.BOUNCED,
    RecordType.TRANSIENT,
    RecordType.REMOTE_BOUNCE,
    RecordType.FEEDBACK,
)


@pytest.mark.parametrize(
    ("category", "expected"),
    [
        ("bad-mailbox", BounceClass.HARD),
        ("inactive-mailbox", BounceClass.HARD),
        ("bad-domain", BounceClass.HARD),
        ("quota-issues", BounceClass.SOFT),
        ("no-answer-from-host", BounceClass.SOFT),
        ("relaying-issues", BounceClass.SOFT),
        ("routing-errors", BounceClass.SOFT),
        ("message-expired", BounceClass.SOFT),
        ("bad-connection", BounceClass.SOFT),
        ("protocol-errors", BounceClass.SOFT),
        ("spam-related", BounceClass.OTHER),
        ("policy-related", BounceClass.OTHER),
        ("content-related", BounceClass.OTHER),
        ("virus-related", BounceClass.OTHER),
        ("invalid-sender", BounceClass.OTHER),
        ("bad-configuration", BounceClass.OTHER),
        ("other", BounceClass.OTHER),
        ("", BounceClass.OTHER),
        (" Bad-Mailbox ", BounceClass.HARD),
    ],
)
def test_bounce_categories(category: str, expected: BounceClass) -> None:
    assert bounce_class(category) is expected


def test_deferrals_are_read_with_the_recipient_provider_patterns() -> None:
    throttled = rec(T, "a@yahoo.fr", queued=at(5, 9), diag="smtp;421 4.7.0 [TSS04] Messages from 192.0.2.1 deferred")
    deferral = classify_deferral(throttled, group=G.YAHOO)
    assert deferral.reply_class is ReplyClass.REPUTATION and deferral.throttling
    ordinary = classify_deferral(rec(T, "a@yahoo.fr", queued=at(5, 9), diag="smtp;450 mailbox busy"), group=G.YAHOO)
    assert not ordinary.throttling


def test_identity_is_the_record_not_its_spelling() -> None:
    one = rec(D, "a@gmail.com", queued=at(5, 9), msgid="m1")
    same_instant = one._replace(time_queued=at(5, 9).astimezone(timezone(timedelta(hours=2))), rcpt="A@Gmail.com")
    assert record_identity(one) == record_identity(same_instant)
    assert len(record_identity(one)) == 16
    assert record_identity(one) != record_identity(one._replace(rcpt="b@gmail.com"))
    assert record_identity(one) != record_identity(one._replace(type=B))
    assert record_identity(one) != record_identity(one._replace(time_logged=at(5, 9, 59)))


def test_local_day_is_the_tenants() -> None:
    assert local_day(at(5, 22, 30), PARIS) == JAN5  # 23:30 in Paris
    assert local_day(at(5, 23, 30), PARIS) == JAN6  # 00:30 in Paris
    assert local_day(datetime(2026, 1, 5, 23, 30), PARIS) == JAN6  # naive is UTC


def _aggregator() -> AccountingAggregator:
    return AccountingAggregator(timezone_for=lambda address: PARIS if address == IP_A else UTC)


def _scenario() -> list[AccountingRecord]:
    return [
        rec(D, "a1@gmail.com", queued=at(5, 22, 30), msgid="m1"),  # 23:30 in Paris: Jan 5
        rec(D, "a2@gmail.com", queued=at(5, 23, 30), msgid="m2"),  # 00:30 in Paris: Jan 6
        rec(D, "a3@googlemail.com", queued=at(5, 9), msgid="m3"),
        rec(B, "h1@hotmail.fr", queued=at(5, 10), cat="bad-mailbox"),
        rec(B, "y1@yahoo.fr", queued=at(5, 10), cat="quota-issues"),
        rec(B, "a4@gmail.com", queued=at(5, 10), cat="spam-related", diag="smtp;550-5.7.1 likely unsolicited"),
        rec(T, "a5@gmail.com", queued=at(5, 11), diag="smtp;421-4.7.28 unusual rate of unsolicited mail"),
        rec(T, "a5@gmail.com", queued=at(5, 11), logged=at(5, 11, 20), diag="smtp;450 4.2.0 greylisted"),
        rec(T, "y2@yahoo.fr", queued=at(5, 11), diag="smtp;421 4.7.0 [TSS04] deferred"),
        rec(D, "a5@gmail.com", queued=at(5, 11), logged=at(5, 12), msgid="m5"),
        # a late remote bounce, two days later, about m1 (matched by orig + rcpt): it lands on Jan 5
        rec(RB, "a1@gmail.com", queued=None, logged=at(7, 8), vmta="", cat="bad-mailbox"),
        # a complaint about m2 whose recipient the provider redacted (matched by Message-Id): Jan 6
        rec(F, "redacted@example.invalid", queued=None, logged=at(8, 8), vmta="", msgid="m2", orig="x@y"),
        # IP B, tenant in UTC
        rec(D, "o1@orange.fr", queued=at(5, 23, 30), vmta=VMTA_B, msgid="b1"),
        rec(D, "o2@wanadoo.fr", queued=at(5, 12), vmta="", source_ip=IP_B, msgid="b2"),
    ]


def test_totals_with_the_figures() -> None:
    aggregator = _aggregator()
    outcomes = [aggregator.add(record) for record in _scenario()]
    assert outcomes == [Outcome.COUNTED] * len(outcomes)
    assert aggregator.totals() == {
        TotalsKey(IP_A, JAN5, G.GMAIL): DayTotals(
            sent=4, delivered=3, bounced_hard=1, bounced_other=1, deferred=2, throttled=1
        ),
        TotalsKey(IP_A, JAN5, G.MICROSOFT): DayTotals(sent=1, bounced_hard=1),
        TotalsKey(IP_A, JAN5, G.YAHOO): DayTotals(sent=1, bounced_soft=1, deferred=1, throttled=1),
        TotalsKey(IP_A, JAN6, G.GMAIL): DayTotals(sent=1, delivered=1, complained=1),
        TotalsKey(IP_B, JAN5, G.ORANGE): DayTotals(sent=2, delivered=2),
    }
    gmail = aggregator.totals()[TotalsKey(IP_A, JAN5, G.GMAIL)]
    assert gmail.bounced == 2
    assert aggregator.unmatched() == []


def test_duplicates_count_once_and_stored_totals_resume_exactly() -> None:
    first = _aggregator()
    first.add_all(_scenario())
    again = [first.add(record) for record in _scenario()]
    assert set(again) == {Outcome.DUPLICATE}
    expected = first.totals()
    assert first.totals() == expected
    # A new run seeded with what the first one stored counts nothing twice.
    resumed = AccountingAggregator(
        timezone_for=lambda address: PARIS if address == IP_A else UTC,
        totals_seed=expected,
        seen_seed=first.seen,
    )
    assert {resumed.add(record) for record in _scenario()} == {Outcome.DUPLICATE}
    assert resumed.totals() == expected


def test_late_events_wait_for_their_original_then_are_reported() -> None:
    aggregator = _aggregator()
    early_bounce = rec(RB, "late@gmail.com", queued=None, logged=at(5, 13), vmta="", cat="inactive-mailbox", env="E9")
    orphan = rec(F, "nobody@gmail.com", queued=None, logged=at(5, 14), vmta="", msgid="unknown-id")
    assert aggregator.add(early_bounce) is Outcome.PENDING
    assert aggregator.add(orphan) is Outcome.PENDING
    assert aggregator.add(early_bounce) is Outcome.DUPLICATE
    aggregator.add(rec(D, "late@gmail.com", queued=at(5, 12), env="E9", orig="campaign@mail.example.com"))
    assert aggregator.resolve_pending() == 1
    assert aggregator.totals()[TotalsKey(IP_A, JAN5, G.GMAIL)] == DayTotals(sent=1, delivered=1, bounced_hard=1)
    unmatched = aggregator.unmatched()
    assert [(item.type, item.rcpt_domain) for item in unmatched] == [(F, "gmail.com")]
    assert aggregator.counts == {Outcome.COUNTED: 2, Outcome.PENDING: 1, Outcome.DUPLICATE: 1}


def test_records_of_unknown_vmtas_are_not_attributed() -> None:
    aggregator = _aggregator()
    outcome = aggregator.add(rec(D, "a@gmail.com", queued=at(5, 9), vmta="customer-vmta"))
    assert outcome is Outcome.UNATTRIBUTED
    assert aggregator.totals() == {}
    # seen again once the VMTA is known (a later run), it still counts: unattributed records are not "seen"
    known = AccountingAggregator(
        timezone_for=lambda _a: UTC, address_for_vmta=lambda vmta: IP_B, seen_seed=aggregator.seen
    )
    assert known.add(rec(D, "a@gmail.com", queued=at(5, 9), vmta="customer-vmta")) is Outcome.COUNTED


def test_provider_classifier_can_be_mx_aware() -> None:
    def by_mx(domain: str) -> ProviderGroup:
        return G.GMAIL if domain == "acme-workspace.fr" else G.OTHER

    aggregator = AccountingAggregator(timezone_for=lambda _a: UTC, provider_for=by_mx)
    aggregator.add(rec(D, "ceo@Acme-Workspace.fr", queued=at(5, 9)))
    assert list(aggregator.totals()) == [TotalsKey(IP_A, JAN5, G.GMAIL)]


def test_records_without_time_queued_use_time_logged() -> None:
    aggregator = _aggregator()
    aggregator.add(rec(D, "a@gmail.com", queued=None, logged=at(5, 23, 30)))
    assert list(aggregator.totals()) == [TotalsKey(IP_A, JAN6, G.GMAIL)]


def test_late_events_and_originals_carry_over_between_runs() -> None:
    class StoredOrigins:
        """What a repository does: keys -> origin rows."""

        def __init__(self) -> None:
            self.rows: dict[str, Origin] = {}

        def remember(self, record: AccountingRecord, origin: Origin) -> None:
            self.rows.update(dict.fromkeys(origin_keys(record), origin))

        def find(self, record: AccountingRecord) -> Origin | None:
            return next((self.rows[key] for key in origin_keys(record) if key in self.rows), None)

    store = StoredOrigins()
    monday = AccountingAggregator(timezone_for=lambda _a: PARIS, origins=store)
    monday.add(rec(D, "a@gmail.com", queued=at(5, 9), msgid="m-a"))
    early = rec(RB, "b@gmail.com", queued=None, logged=at(5, 10), vmta="", cat="bad-domain")
    assert monday.add(early) is Outcome.PENDING
    assert monday.resolve_pending() == 0 and monday.pending == (early,)
    # Next run: the complaint about Monday's message, and the original of the early bounce, both arrive.
    tuesday = AccountingAggregator(
        timezone_for=lambda _a: PARIS,
        origins=store,
        totals_seed=monday.totals(),
        seen_seed=monday.seen,
        pending_seed=monday.pending,
    )
    tuesday.add(rec(F, "hidden@example.invalid", queued=None, logged=at(6, 8), vmta="", msgid="m-a", orig="x@y"))
    tuesday.add(rec(D, "b@gmail.com", queued=at(5, 9, 30)))
    assert tuesday.resolve_pending() == 1 and tuesday.pending == ()
    assert tuesday.totals() == {
        TotalsKey(IP_A, JAN5, G.GMAIL): DayTotals(sent=2, delivered=2, bounced_hard=1, complained=1),
    }
    remembered = origin_keys(rec(D, "a@gmail.com", queued=None, msgid="m-a")) + origin_keys(
        rec(D, "b@gmail.com", queued=None)
    )
    assert set(store.rows) == set(remembered)


def test_the_counting_loop_keeps_the_identities_and_origin_keys_of_the_rules() -> None:
    """`add_all` computes identities and origin keys inline: they are exactly `record_identity`'s and
    `origin_keys`'s, records fed one by one or all at once."""
    records = _scenario()
    records.append(records[0]._replace(time_queued=at(5, 22, 30).astimezone(PARIS), rcpt="A1@Gmail.com"))
    one_by_one = AccountingAggregator(timezone_for=_aggregator().timezone_for, collect=True)
    outcomes = [one_by_one.add(record) for record in records]
    at_once = AccountingAggregator(timezone_for=_aggregator().timezone_for, collect=True)
    at_once.add_all(records)
    assert outcomes[-1] is Outcome.DUPLICATE
    assert at_once.counts == one_by_one.counts
    assert at_once.totals() == one_by_one.totals()
    assert at_once.fresh_identities == one_by_one.fresh_identities
    expected = [record_identity(record) for record in records[:-1]]
    assert sorted(i for ids in at_once.fresh_identities.values() for i in ids) == sorted(expected)
    remembered = dict(at_once.origins.fresh_items())  # type: ignore[attr-defined]  # an OriginIndex
    direct = [r for r in records[:-1] if r.type in (D, B) and (r.vmta or r.dlv_source_ip)]
    assert set(remembered) == {key for record in direct for key in origin_keys(record)}
