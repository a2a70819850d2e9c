"""THE place where PowerMTA accounting records become per-IP, per-provider, per-day figures for the warmup.

Public API:
    RecordType                       -- d, b, t, rb, f (the record types email-engine asks PowerMTA for)
    record_type(raw) -> RecordType | None     -- "d"/"delivery", ... ; None for tq, r, rs and anything else
    AccountingRecord                 -- one record, the fields that matter, as the adapters parse them
    BounceClass, bounce_class(bounce_cat) -> BounceClass
    Deferral, classify_deferral(record, *, group) -> Deferral
    record_identity(record) -> bytes          -- 16-byte identity: the same record seen twice counts once
    local_day(moment, tz) -> date
    Origin, origin_keys(record), OriginStore (protocol), OriginIndex (in memory; .preload, .fresh_items)
                                     -- what is remembered of each d/b record to attribute rb/f records
    Notable(kind, record, address, day, provider), NotableKind -- hard bounces and complaints, for forwarding
    identity_hour(moment) -> int     -- the hour bucket (hours since the epoch) identities are kept in
    TotalsKey(address, day, provider), DayTotals, Outcome, Unmatched
    AccountingAggregator(timezone_for, provider_for=classify_domain, address_for_vmta=address_from_vmta,
                         totals_seed=None, seen_seed=(), origins=OriginIndex(), pending_seed=(),
                         collect=False)
        .add(record) -> Outcome, .add_all(records), .resolve_pending() -> int, .totals() -> dict,
        .unmatched() -> list[Unmatched], .pending -> tuple[AccountingRecord, ...], .seen -> frozenset[bytes],
        .counts -> Mapping[Outcome, int]
        with collect=True also: .fresh_identities -> {hour: [identity, ...]} (identities first seen in this run),
        .notable -> list[Notable] (hard bounces and complaints counted in this run, for forwarding)

The rules, each in one place below:

* Bounce classes (`bounce_class`): HARD = bad-mailbox, inactive-mailbox, bad-domain and SOFT = quota-issues,
  no-answer-from-host, relaying-issues, routing-errors, exactly as MailWizz's `/dswh/pmta` reads them. Decided here
  for the other PowerMTA categories: message-expired, bad-connection and protocol-errors are SOFT too (the
  receiver did not refuse the address, delivery just did not happen); spam-related, policy-related,
  content-related, virus-related, invalid-sender, bad-configuration, other, an empty or unknown category are OTHER
  (MailWizz's "internal": not about the recipient, often about the sender's reputation). OTHER is counted apart
  (`bounced_other`), never dropped: the bounce rate the warmup reads is hard + soft + other.
* Attribution: d, b and t records name their VMTA; the VMTA is the IP (`address_for_vmta`, by default the inverse
  of `pmta_config.vmta_name`), falling back to dlvSourceIp. rb and f records have no VMTA: each d/b record is
  remembered (`OriginIndex`) under its header_Message-Id, its (envId, rcpt) and its (orig, rcpt) -- orig is the
  VERP return path when MailWizz uses one -- and an rb/f record is attributed to the first key that matches, in
  that order. One that matches nothing is kept pending (its original may come later in the same batch) and
  reported by `unmatched()` if `resolve_pending()` cannot place it either.
* The day: the tenant-local day on which the original message was QUEUED (timeQueued of the d/b/t record, or of
  the original for rb/f; timeLogged when a record has no timeQueued). A bounce that arrives two days later, or a
  complaint a week later, lands on the day of the mail that caused it, so each day's rates are final once its
  late events are in.
* Identity: a record is the same record when its type, both times, orig, rcpt, VMTA, DSN status, diagnostic,
  bounce category, envId, jobId, Message-Id and feedback type are the same (`record_identity`, a 128-bit
  XXH3 of those fields: not a security boundary, a fast fingerprint). Re-reading a file, overlapping pulls, or
  the pipe and the file both carrying a record count it once. A record seen again has the same timeLogged, so
  identities are kept per hour of timeLogged (`identity_hour`) and only the hours a batch touches need reading.
* Forwarding: hard bounces (b and rb whose class is HARD) and complaints (f) are `notable`: the tenant's webhooks
  get them and the recipient is suppressed.
* Counting, per (IP address, local day, provider group), as ABSOLUTE running totals (seed them with stored
  totals and identities; store them back whole):
    sent       d + b: every message that reached an outcome from the IP, once;
    delivered  d (accepted by the receiving MTA; a later rb adds a bounce, it does not take the delivery back);
    bounced_hard / bounced_soft / bounced_other   b and rb by `bounce_class`;
    complained f;
    deferred   t: every deferral attempt;
    throttled  t whose reply is the provider's reputation throttling (`provider_replies`).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field, fields
from datetime import UTC, date, datetime, tzinfo
from enum import StrEnum
from ipaddress import ip_address
from typing import NamedTuple, Protocol

import numpy as np
import xxhash

from campaign_gateway.domain.pmta_config import address_from_vmta
from campaign_gateway.domain.provider_replies import ReplyClass, classify_reply
from campaign_gateway.domain.providers import ProviderGroup, classify_domain


class RecordType(StrEnum):
    DELIVERED = "d"
    BOUNCED = "b"
    TRANSIENT = "t"
    REMOTE_BOUNCE = "rb"
    FEEDBACK = "f"


_TYPE_NAMES: dict[str, RecordType] = {
    **{kind.value: kind for kind in RecordType},
    "delivery": RecordType.DELIVERED,
    "bounce": RecordType.BOUNCED,
    "transient": RecordType.TRANSIENT,
    "remote-bounce": RecordType.REMOTE_BOUNCE,
    "feedback-loop": RecordType.FEEDBACK,
}


def record_type(raw: str) -> RecordType | None:
    """The record type of a `type` column; None for the types email-engine does not count (tq, r, rs, ...)."""
    return _TYPE_NAMES.get(raw.strip().lower())


class AccountingRecord(NamedTuple):
    """One accounting record, whatever it came from (CSV file, pipe, NDJSON push). Strings are "" when absent."""

    type: RecordType
    time_logged: datetime
    time_queued: datetime | None
    orig: str
    rcpt: str
    vmta: str
    dsn_status: str
    dsn_diag: str
    bounce_cat: str
    env_id: str
    job_id: str
    message_id: str
    """header_Message-Id without its angle brackets."""
    dlv_source_ip: str = ""
    feedback_type: str = ""


class BounceClass(StrEnum):
    HARD = "HARD"
    SOFT = "SOFT"
    OTHER = "OTHER"


HARD_CATEGORIES = frozenset({"bad-mailbox", "inactive-mailbox", "bad-domain"})
SOFT_CATEGORIES = frozenset(
    {
        # MailWizz's soft list
        "quota-issues",
        "no-answer-from-host",
        "relaying-issues",
        "routing-errors",
        # decided here: delivery did not happen, the address was not refused
        "message-expired",
        "bad-connection",
        "protocol-errors",
    }
)


def bounce_class(bounce_cat: str) -> BounceClass:
    category = bounce_cat.strip().lower()
    if category in HARD_CATEGORIES:
        return BounceClass.HARD
    if category in SOFT_CATEGORIES:
        return BounceClass.SOFT
    return BounceClass.OTHER


@dataclass(frozen=True)
class Deferral:
    group: ProviderGroup
    reply_class: ReplyClass

    @property
    def throttling(self) -> bool:
        """Reputation-class throttling by the provider, as opposed to an ordinary deferral."""
        return self.reply_class is ReplyClass.REPUTATION


def classify_deferral(record: AccountingRecord, *, group: ProviderGroup) -> Deferral:
    """What a t record's reply says, read with the patterns of the recipient's provider group."""
    return Deferral(group=group, reply_class=classify_reply(group=group, reply=record.dsn_diag))


_STAMPS: dict[datetime, tuple[str, int]] = {}
_STAMPS_LIMIT = 100_000
_SEPARATOR = "\x1f"
_identity_digest = xxhash.xxh3_128_digest


def _stamp(value: datetime) -> tuple[str, int]:
    """Seconds since the epoch as text (the same instant written with any offset gives the same identity) and the
    hour bucket of the instant; cached by the very datetime (the parser hands out one object per timestamp text)."""
    found = _STAMPS.get(value)
    if found is None:
        if len(_STAMPS) >= _STAMPS_LIMIT:
            _STAMPS.clear()
        aware = value if value.tzinfo is not None else value.replace(tzinfo=UTC)
        seconds = int(aware.timestamp())
        found = _STAMPS[value] = (str(int(value.timestamp())), seconds // 3600)
    return found


def _moment(value: datetime | None) -> str:
    return "" if value is None else (_STAMPS.get(value) or _stamp(value))[0]


def _identity_text(record: AccountingRecord, rcpt_lower: str) -> str:
    """What `record_identity` hashes, the recipient already lower-cased (the aggregator needs it anyway)."""
    return _SEPARATOR.join(
        (
            record.type,  # a StrEnum member is its value as a string
            _moment(record.time_logged),
            _moment(record.time_queued),
            record.orig,
            rcpt_lower,
            record.vmta,
            record.dsn_status,
            record.dsn_diag,
            record.bounce_cat,
            record.env_id,
            record.job_id,
            record.message_id,
            record.feedback_type,
        )
    )


def record_identity(record: AccountingRecord) -> bytes:
    """16 bytes that are equal exactly when two records are the same record (see the module rules)."""
    return _identity_digest(_identity_text(record, record.rcpt.lower()).encode("utf-8", "surrogatepass"))


def identity_hour(moment: datetime) -> int:
    """Hours since the epoch of a record's timeLogged: the bucket its identity is kept in."""
    return (_STAMPS.get(moment) or _stamp(moment))[1]


def local_day(moment: datetime, tz: tzinfo) -> date:
    """The calendar day of `moment` in the tenant's time zone (naive times are taken as UTC)."""
    aware = moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)
    return aware.astimezone(tz).date()


class TotalsKey(NamedTuple):
    address: str
    day: date
    provider: ProviderGroup


@dataclass
class DayTotals:
    """Absolute counters for one (IP, local day, provider group)."""

    sent: int = 0
    delivered: int = 0
    bounced_hard: int = 0
    bounced_soft: int = 0
    bounced_other: int = 0
    complained: int = 0
    deferred: int = 0
    throttled: int = 0

    @property
    def bounced(self) -> int:
        return self.bounced_hard + self.bounced_soft + self.bounced_other

    def copy(self) -> DayTotals:
        return DayTotals(**{f.name: getattr(self, f.name) for f in fields(self)})


class Origin(NamedTuple):
    """What an rb/f record needs to know about the message it is about."""

    address: str
    day: date
    provider: str
    """The ProviderGroup's value (a plain string hashes faster than an enum member)."""


_new_origin = tuple.__new__


def origin_key_digest(key: str) -> int:
    """The 64-bit XXH3 of an origin key: what storage (and a batch of columns) keeps instead of the key."""
    return xxhash.xxh3_64_intdigest(key.encode("utf-8", "surrogatepass"))


def origin_keys(record: AccountingRecord) -> list[str]:
    """The keys a d/b record is remembered under and an rb/f record is looked up by, in lookup order.

    Plain strings (a tag, then the parts joined by a unit separator): millions of them are cheaper to hash and to
    keep than tuples, which the garbage collector would have to walk; a repository can store them as they are.
    """
    rcpt = record.rcpt.lower()
    keys = []
    if record.message_id:
        keys.append("m\x1f" + record.message_id)
    if record.env_id:
        keys.append(f"e\x1f{record.env_id}\x1f{rcpt}")
    if record.orig:
        keys.append(f"o\x1f{record.orig.lower()}\x1f{rcpt}")
    return keys


class OriginStore(Protocol):
    """Where originals are remembered between ingestion runs (a complaint may come a week after its message)."""

    def remember(self, record: AccountingRecord, origin: Origin) -> None: ...

    def find(self, record: AccountingRecord) -> Origin | None: ...


class OriginIndex:
    """The in-memory OriginStore: each key of `origin_keys` -> Origin; the latest registration of a key wins.

    Originals registered here (`fresh_items`) are kept apart from those `preload`ed from storage for the pending
    records, so that only the new ones are stored back.
    """

    def __init__(self) -> None:
        self._origins: dict[str, Origin] = {}
        self._loaded: dict[str, Origin] = {}
        # Originals registered from columns (`AccountingAggregator.add_columns`): the sorted key digests
        # (`origin_key_digest`), each with the index of its latest origin in `_digest_origins`.
        self._digests = np.empty(0, dtype=np.uint64)
        self._digest_slots = np.empty(0, dtype=np.int64)
        self._digest_origins: list[Origin] = []

    def __len__(self) -> int:
        return len(self._origins) + len(self._digests)

    def remember(self, record: AccountingRecord, origin: Origin) -> None:
        for key in origin_keys(record):
            self._origins[key] = origin

    def find(self, record: AccountingRecord) -> Origin | None:
        for key in origin_keys(record):
            found = self._origins.get(key) or self._digest_find(key) or self._loaded.get(key)
            if found is not None:
                return found
        return None

    def _digest_find(self, key: str) -> Origin | None:
        if not len(self._digests):
            return None
        digest = np.uint64(origin_key_digest(key))
        index = int(np.searchsorted(self._digests, digest))
        if index < len(self._digests) and self._digests[index] == digest:
            return self._digest_origins[int(self._digest_slots[index])]
        return None

    def remember_digests(self, digests: np.ndarray, slots: np.ndarray, origins: list[Origin]) -> None:
        """Originals registered from columns: unique sorted key digests, each with its origin's index in `origins`
        (for each key, the latest registration). Only once, in an index that holds nothing else."""
        if self._origins or len(self._digests):
            raise ValueError("an OriginIndex takes originals from records or from one batch of columns, not both")
        self._digests, self._digest_slots, self._digest_origins = digests, slots, origins

    def preload(self, found: Mapping[str, Origin]) -> None:
        """Originals read back from storage (for records still pending)."""
        self._loaded.update(found)

    def fresh_items(self) -> list[tuple[str, Origin]]:
        """The keys registered by `remember` in this run, with their origins."""
        return list(self._origins.items())

    def fresh_digests(self) -> tuple[np.ndarray, np.ndarray, list[Origin]]:
        """The key digests registered from columns in this run: (sorted digests, origin index of each, origins)."""
        return self._digests, self._digest_slots, self._digest_origins


_DAY_CACHE_LIMIT = 100_000


class Outcome(StrEnum):
    COUNTED = "COUNTED"
    DUPLICATE = "DUPLICATE"
    PENDING = "PENDING"
    """An rb/f whose original is not known yet; `resolve_pending` tries again."""
    UNATTRIBUTED = "UNATTRIBUTED"
    """A d/b/t record whose VMTA is not an IP email-engine knows."""


class NotableKind(StrEnum):
    HARD_BOUNCE = "HARD_BOUNCE"
    COMPLAINT = "COMPLAINT"


class Notable(NamedTuple):
    """A hard bounce or a complaint, counted, with the IP, day and provider it was attributed to."""

    kind: NotableKind
    record: AccountingRecord
    address: str
    day: date
    provider: str


@dataclass(frozen=True)
class Unmatched:
    """An rb/f record no original could be found for (never counted)."""

    type: RecordType
    rcpt_domain: str
    time_logged: datetime
    reason: str


class Codes(NamedTuple):
    """A column of strings as a dictionary: `values[codes[i]]` is row i's string."""

    codes: np.ndarray
    values: list[str]


COLUMN_KINDS = (
    RecordType.DELIVERED,
    RecordType.BOUNCED,
    RecordType.TRANSIENT,
    RecordType.REMOTE_BOUNCE,
    RecordType.FEEDBACK,
)
"""`RecordColumns.kind` codes: the index of the record's type here."""
_D, _B, _T, _RB, _F = range(len(COLUMN_KINDS))


@dataclass(frozen=True)
class RecordColumns:
    """A batch of records as columns, in record order: what a columnar reader hands `add_columns`. Each column
    holds what the aggregator's rules read of the record, already computed the way those rules compute it."""

    kind: np.ndarray
    """int8: the index of the record's type in COLUMN_KINDS."""
    identity: list[bytes]
    """`record_identity` of each record."""
    hour: np.ndarray
    """int64: `identity_hour` of timeLogged."""
    moment: np.ndarray
    """int64: seconds since the epoch of timeQueued, or of timeLogged when there is none (the day's instant)."""
    vmta: Codes
    source_ip: Codes
    """dlvSourceIp."""
    domain: Codes
    """The recipient's domain as written: what follows its last "@" (the whole rcpt without one)."""
    bounce_cat: Codes
    diag: Codes
    """dsnDiag."""
    keys: tuple[np.ndarray, np.ndarray, np.ndarray]
    """uint64 `origin_key_digest` of each record's Message-Id, envId and orig key (`origin_keys`)."""
    has_key: tuple[np.ndarray, np.ndarray, np.ndarray]
    """bool: the record has that key (its Message-Id, envId, orig is not empty)."""
    records: Callable[[np.ndarray], list[AccountingRecord]]
    """The records at these row indices (only for the few the rules keep whole: pending, notable)."""

    def __len__(self) -> int:
        return len(self.kind)


_OUTCOMES = tuple(Outcome)
_COUNTED, _DUPLICATE, _PENDING, _UNATTRIBUTED = (_OUTCOMES.index(outcome) for outcome in Outcome)
_LATE_TYPES = frozenset({RecordType.REMOTE_BOUNCE, RecordType.FEEDBACK})
_COUNTERS = tuple(f.name for f in fields(DayTotals))
_SENT, _DELIVERED, _HARD, _SOFT, _OTHER, _COMPLAINED, _DEFERRED, _THROTTLED = range(len(_COUNTERS))
_BOUNCE_COUNTER = {BounceClass.HARD: _HARD, BounceClass.SOFT: _SOFT, BounceClass.OTHER: _OTHER}
_REPLY_CACHE_LIMIT = 20_000


@dataclass
class AccountingAggregator:
    """Running totals over a stream of records; feed it records in any order, read absolute totals.

    `add_all` is the hot loop (it runs once per record of every file): the rules are those of the small helpers
    below, applied inline with every lookup cached. Internally counters are lists in `DayTotals` field order, keyed
    by `Origin` (address, day, group value): enum members hash in Python, and the key is the d/b record's origin.
    """

    timezone_for: Callable[[str], tzinfo]
    """The tenant time zone of an IP address."""
    provider_for: Callable[[str], ProviderGroup] = classify_domain
    """Provider group of a recipient domain (plug an MX-aware classifier here; answers are cached per domain)."""
    address_for_vmta: Callable[[str], str | None] = address_from_vmta
    totals_seed: Mapping[TotalsKey, DayTotals] | None = None
    seen_seed: Iterable[bytes] = ()
    origins: OriginStore = field(default_factory=OriginIndex)
    pending_seed: Iterable[AccountingRecord] = ()
    """rb/f records a previous run could not attribute (`pending`): tried again as originals arrive."""
    collect: bool = False
    """Keep what storage and forwarding need: identities first seen, hard bounces and complaints."""
    _totals: dict[tuple[str, date, str], list[int]] = field(init=False)
    _seen: set[bytes] = field(init=False)
    _pending: list[AccountingRecord] = field(init=False, default_factory=list)
    _tally: list[int] = field(init=False, default_factory=lambda: [0] * len(_OUTCOMES))
    _addresses: dict[str, str] = field(init=False, default_factory=dict)
    _providers: dict[str, tuple[ProviderGroup, str]] = field(init=False, default_factory=dict)
    _zones: dict[str, tzinfo] = field(init=False, default_factory=dict)
    _days: dict[str, dict[datetime, date]] = field(init=False, default_factory=dict)
    """An address -> the day table of its time zone (shared by the zone's addresses)."""
    _zone_days: dict[tzinfo, dict[datetime, date]] = field(init=False, default_factory=dict)
    _quarters: dict[tuple[tzinfo, int], date] = field(init=False, default_factory=dict)
    _throttling: dict[str, dict[str, bool]] = field(init=False, default_factory=dict)
    _fresh: dict[int, list[bytes]] = field(init=False, default_factory=dict)
    _notable: list[Notable] = field(init=False, default_factory=list)
    _last: int = field(init=False, default=_COUNTED)

    def __post_init__(self) -> None:
        self._totals = {
            (key.address, key.day, key.provider.value): [getattr(value, name) for name in _COUNTERS]
            for key, value in (self.totals_seed or {}).items()
        }
        self._seen = set(self.seen_seed)
        self._pending = list(self.pending_seed)
        self._tally[_PENDING] = len(self._pending)

    @property
    def seen(self) -> frozenset[bytes]:
        return frozenset(self._seen)

    @property
    def counts(self) -> Mapping[Outcome, int]:
        return {outcome: self._tally[index] for index, outcome in enumerate(_OUTCOMES) if self._tally[index]}

    def totals(self) -> dict[TotalsKey, DayTotals]:
        """A copy of every counter, sorted by address, day and provider."""
        return {
            TotalsKey(address, day, ProviderGroup(group)): DayTotals(*self._totals[(address, day, group)])
            for address, day, group in sorted(self._totals)
        }

    @property
    def fresh_identities(self) -> dict[int, list[bytes]]:
        """Identities first seen in this run, by `identity_hour` of their timeLogged (with `collect`)."""
        return self._fresh

    @property
    def notable(self) -> list[Notable]:
        """Hard bounces and complaints counted in this run, in order (with `collect`)."""
        return self._notable

    @property
    def pending(self) -> tuple[AccountingRecord, ...]:
        """The rb/f records still waiting for their original: store them with the totals, seed them next run."""
        return tuple(self._pending)

    def unmatched(self) -> list[Unmatched]:
        return [
            Unmatched(
                type=record.type,
                rcpt_domain=record.rcpt.rsplit("@", 1)[-1].lower(),
                time_logged=record.time_logged,
                reason="no d/b record with its Message-Id, envId+rcpt or orig+rcpt",
            )
            for record in self._pending
        ]

    def add(self, record: AccountingRecord) -> Outcome:
        self.add_all((record,))
        return _OUTCOMES[self._last]

    def add_all(self, records: Iterable[AccountingRecord]) -> None:
        """Count each record once (see `record_identity`): direct d/b/t records on their IP, day and provider,
        rb/f records on their original's (or pending until it is known)."""
        seen, tally, totals, fresh = self._seen, self._tally, self._totals, self._fresh
        addresses, providers, days_of, throttling = self._addresses, self._providers, self._days, self._throttling
        collect, notable = self.collect, self._notable
        # The in-memory index is filled inline; another OriginStore through its `remember`.
        remembered = self.origins._origins if type(self.origins) is OriginIndex else None
        stamps, stamp_of, join, digest = _STAMPS, _stamp, _SEPARATOR.join, _identity_digest
        late_types, transient, delivered_type = _LATE_TYPES, RecordType.TRANSIENT, RecordType.DELIVERED
        outcome = _COUNTED
        for record in records:
            (kind, logged, queued, orig, rcpt, vmta, _status, diag, bounce_cat, env_id, _job, message_id) = record[:12]
            rcpt_lower = rcpt.lower()
            logged_stamp = stamps.get(logged) or stamp_of(logged)
            identity = digest(
                join(
                    (
                        kind,
                        logged_stamp[0],
                        "" if queued is None else (stamps.get(queued) or stamp_of(queued))[0],
                        orig,
                        rcpt_lower,
                        vmta,
                        _status,
                        diag,
                        bounce_cat,
                        env_id,
                        _job,
                        message_id,
                        record.feedback_type,
                    )
                ).encode("utf-8", "surrogatepass")
            )
            if identity in seen:
                tally[_DUPLICATE] += 1
                outcome = _DUPLICATE
                continue
            if kind in late_types:
                outcome = self._add_late(record)
            else:
                # The IP: the VMTA's address (`address_for_vmta`), else dlvSourceIp.
                address = addresses.get(vmta) if vmta else ""
                if address is None:
                    address = addresses[vmta] = self.address_for_vmta(vmta) or ""
                if not address:
                    address = _source_address(record.dlv_source_ip)
                if not address:
                    tally[_UNATTRIBUTED] += 1
                    outcome = _UNATTRIBUTED
                    continue
                domain = rcpt[rcpt.rfind("@") + 1 :]
                provider_found = providers.get(domain)
                if provider_found is None:
                    provider_found = self._provider(domain)
                provider, provider_key = provider_found
                moment = queued or logged
                days = days_of.get(address)
                day = days.get(moment) if days is not None else None
                if day is None:
                    day = self._day(address, moment)
                origin = _new_origin(Origin, (address, day, provider_key))
                bucket = totals.get(origin)
                if bucket is None:
                    bucket = totals[origin] = [0, 0, 0, 0, 0, 0, 0, 0]
                if kind is transient:
                    bucket[_DEFERRED] += 1
                    replies = throttling.get(provider_key)
                    throttled = replies.get(diag) if replies is not None else None
                    if throttled is None:
                        throttled = self._throttled(record, provider)
                    if throttled:
                        bucket[_THROTTLED] += 1
                else:
                    bucket[_SENT] += 1
                    if kind is delivered_type:
                        bucket[_DELIVERED] += 1
                    elif _count_bounce(bucket, bounce_cat) is BounceClass.HARD and collect:
                        notable.append(Notable(NotableKind.HARD_BOUNCE, record, address, day, provider_key))
                    if remembered is not None:
                        # `origin_keys`, inline: the same keys, in the same order.
                        if message_id:
                            remembered["m\x1f" + message_id] = origin
                        if env_id:
                            remembered[f"e\x1f{env_id}\x1f{rcpt_lower}"] = origin
                        if orig:
                            remembered[f"o\x1f{orig.lower()}\x1f{rcpt_lower}"] = origin
                    else:
                        self.origins.remember(record, origin)
                outcome = _COUNTED
            # A pending record is remembered too: seen again, it must not be queued twice.
            seen.add(identity)
            if collect:
                hour_bucket = fresh.get(logged_stamp[1])
                if hour_bucket is None:
                    hour_bucket = fresh[logged_stamp[1]] = []
                hour_bucket.append(identity)
            tally[outcome] += 1
        self._last = outcome

    def add_columns(self, columns: RecordColumns) -> None:
        """`add_all` for a batch as columns, with the same outcome in the same order: each rule of `add_all` is
        applied per distinct value (VMTA, domain, reply, quarter hour, ...) and the counting is done by group.
        Only for a fresh aggregator's first batch, with the in-memory OriginIndex (one batch, one aggregator)."""
        if not isinstance(self.origins, OriginIndex) or len(self.origins):
            raise ValueError("add_columns takes the first batch of an aggregator with an empty OriginIndex")
        size = len(columns)
        if not size:
            return
        kind = columns.kind
        late = kind >= _RB
        address_of, addresses = self._column_addresses(columns)
        unattributed = ~late & (address_of < 0)
        duplicate = self._column_duplicates(columns.identity, unattributed)
        direct = ~late & ~unattributed & ~duplicate
        self._tally[_DUPLICATE] += int(duplicate.sum())
        self._tally[_UNATTRIBUTED] += int((unattributed & ~duplicate).sum())
        rows = np.flatnonzero(direct)
        # One group per (address, local day, provider): the counters' key and the origin rb/f records find.
        day_of = self._column_days(addresses, address_of[rows], columns.moment[rows])
        # The provider group of each distinct domain, as an index in `groups`.
        groups: list[tuple[ProviderGroup, str]] = []
        group_index: dict[str, int] = {}
        for domain in columns.domain.values:
            found = self._provider(domain)
            if found[1] not in group_index:
                group_index[found[1]] = len(groups)
                groups.append(found)
        by_domain = np.array([group_index[self._provider(d)[1]] for d in columns.domain.values] or [0], dtype=np.int64)
        provider_of = by_domain[columns.domain.codes[rows]]
        packed = (address_of[rows].astype(np.int64) << 40) | (day_of.astype(np.int64) << 12) | provider_of
        group_keys, group_of = np.unique(packed, return_inverse=True)
        origins = [
            _new_origin(
                Origin,
                (addresses[key >> 40], date.fromordinal((key >> 12) & 0xFFFFFFF), groups[key & 0xFFF][1]),
            )
            for key in group_keys.tolist()
        ]
        counters = np.zeros((len(origins), len(_COUNTERS)), dtype=np.int64)
        kinds = kind[rows]
        sent = (kinds == _D) | (kinds == _B)
        counters[:, _SENT] = np.bincount(group_of[sent], minlength=len(origins))
        counters[:, _DELIVERED] = np.bincount(group_of[kinds == _D], minlength=len(origins))
        bounces = kinds == _B
        classes = self._column_bounce_counters(columns.bounce_cat, rows[bounces])
        for counter in (_HARD, _SOFT, _OTHER):
            counters[:, counter] = np.bincount(group_of[bounces][classes == counter], minlength=len(origins))
        transient = kinds == _T
        counters[:, _DEFERRED] = np.bincount(group_of[transient], minlength=len(origins))
        throttled = self._column_throttled(columns.diag, rows[transient], provider_of[transient], groups)
        counters[:, _THROTTLED] = np.bincount(group_of[transient][throttled], minlength=len(origins))
        # Originals: each d/b record's keys; rb/f records find the latest registered before them.
        registered = rows[sent]
        late_rows = np.flatnonzero(late & ~duplicate)
        found = self._column_origins(columns, registered, group_of[sent], late_rows, origins)
        matched = found >= 0
        late_kinds = kind[late_rows][matched]
        late_groups = found[matched]
        complaints = late_kinds == _F
        counters[:, _COMPLAINED] += np.bincount(late_groups[complaints], minlength=len(origins))
        late_classes = self._column_bounce_counters(columns.bounce_cat, late_rows[matched][~complaints])
        for counter in (_HARD, _SOFT, _OTHER):
            counters[:, counter] += np.bincount(
                late_groups[~complaints][late_classes == counter], minlength=len(origins)
            )
        for origin, values in zip(origins, counters.tolist(), strict=True):
            bucket = self._totals.get(origin)
            if bucket is None:
                self._totals[origin] = values
            else:
                bucket[:] = [a + b for a, b in zip(bucket, values, strict=True)]
        waiting = late_rows[~matched]
        self._pending += columns.records(waiting)
        self._tally[_PENDING] += len(waiting)
        self._tally[_COUNTED] += len(rows) + int(matched.sum())
        # What forwarding needs, in record order: hard bounces (b now, rb when matched) and complaints.
        fresh = np.flatnonzero(direct | (late & ~duplicate))
        if len(fresh) == size:
            self._seen.update(columns.identity)  # the usual case: every record is new
        else:
            self._seen.update(columns.identity[index] for index in fresh.tolist())
        if self.collect:
            self._collect_columns(
                columns,
                fresh,
                rows[bounces][classes == _HARD],
                group_of[bounces][classes == _HARD],
                late_rows[matched],
                late_groups,
                late_kinds,
                late_classes,
                origins,
            )
        self._last = _COUNTED

    def _column_addresses(self, columns: RecordColumns) -> tuple[np.ndarray, list[str]]:
        """The IP of each record as an index in the returned list (-1 when none): `address_for_vmta` of its VMTA,
        else its dlvSourceIp -- the rule of `add_all`, applied once per distinct value."""
        addresses: list[str] = []
        index_of: dict[str, int] = {}

        def index(address: str) -> int:
            if not address:
                return -1
            found = index_of.get(address)
            if found is None:
                found = index_of[address] = len(addresses)
                addresses.append(address)
            return found

        by_vmta = np.array(
            [index((self.address_for_vmta(vmta) or "") if vmta else "") for vmta in columns.vmta.values] or [-1],
            dtype=np.int64,
        )
        by_source = np.array([index(_source_address(ip)) for ip in columns.source_ip.values] or [-1], dtype=np.int64)
        from_vmta = by_vmta[columns.vmta.codes]
        return np.where(from_vmta >= 0, from_vmta, by_source[columns.source_ip.codes]), addresses

    def _column_duplicates(self, identities: list[bytes], unattributed: np.ndarray) -> np.ndarray:
        """Records seen before (stored, or earlier in the batch): as in `add_all`, an unattributed record is never
        remembered, so only a stored identity makes it a duplicate."""
        seen = self._seen
        duplicate = np.zeros(len(identities), dtype=bool)
        if seen.isdisjoint(identities) and len(set(identities)) == len(identities):
            return duplicate  # the usual case: nothing to look at one by one
        skip = unattributed.tolist()
        batch: set[bytes] = set()
        for index, identity in enumerate(identities):
            if identity in seen or identity in batch:
                duplicate[index] = True
            elif not skip[index]:
                batch.add(identity)
        return duplicate

    def _column_days(self, addresses: list[str], address_of: np.ndarray, moments: np.ndarray) -> np.ndarray:
        """The tenant-local day (proleptic ordinal) of each moment at each address: `local_day` once per address
        and quarter hour (every time zone's offset is a whole number of quarter hours, see `_day`)."""
        if not len(moments):
            return np.empty(0, dtype=np.int64)
        zones = []
        for address in addresses:
            zone = self._zones.get(address)
            if zone is None:
                zone = self._zones[address] = self.timezone_for(address)
            zones.append(zone)
        quarters = moments // 900
        pairs, inverse = np.unique((address_of << 40) | (quarters - quarters.min()), return_inverse=True)
        base = int(quarters.min())
        days = [
            local_day(
                datetime.fromtimestamp(((pair & ((1 << 40) - 1)) + base) * 900, UTC), zones[pair >> 40]
            ).toordinal()
            for pair in pairs.tolist()
        ]
        return np.array(days, dtype=np.int64)[inverse]

    def _column_bounce_counters(self, bounce_cat: Codes, rows: np.ndarray) -> np.ndarray:
        """The counter (_HARD, _SOFT, _OTHER) of each bounce, by `bounce_class` of its category."""
        by_code = np.array(
            [_BOUNCE_COUNTER[bounce_class(category)] for category in bounce_cat.values] or [_OTHER], dtype=np.int64
        )
        return by_code[bounce_cat.codes[rows]]

    def _column_throttled(
        self, diag: Codes, rows: np.ndarray, provider_of: np.ndarray, groups: list[tuple[ProviderGroup, str]]
    ) -> np.ndarray:
        """`classify_deferral` of each t record, once per distinct (provider group, reply)."""
        if not len(rows):
            return np.zeros(0, dtype=bool)
        pairs, inverse = np.unique((provider_of.astype(np.int64) << 32) | diag.codes[rows], return_inverse=True)
        answers = []
        for pair in pairs.tolist():
            group = groups[pair >> 32][0]
            reply = diag.values[pair & 0xFFFFFFFF]
            answers.append(classify_reply(group=group, reply=reply) is ReplyClass.REPUTATION)
        return np.array(answers, dtype=bool)[inverse]

    def _column_origins(
        self,
        columns: RecordColumns,
        registered: np.ndarray,
        registered_group: np.ndarray,
        late_rows: np.ndarray,
        origins: list[Origin],
    ) -> np.ndarray:
        """Registers the keys of the d/b records at rows `registered` (origin: their group) in the OriginIndex, and
        returns the group each rb/f record at `late_rows` is attributed to (-1: pending): the first of its keys,
        in `origin_keys` order, registered by a record before it, the latest such registration."""
        digests, positions, groups = [], [], []
        for keys, present in zip(columns.keys, columns.has_key, strict=True):
            chosen = present[registered]
            digests.append(keys[registered][chosen])
            positions.append(registered[chosen])
            groups.append(registered_group[chosen])
        digest = np.concatenate(digests)
        position = np.concatenate(positions)
        group = np.concatenate(groups)
        # Registrations sorted by (digest, position): the last of each digest is the one kept.
        order = np.lexsort((position, digest))
        digest, position, group = digest[order], position[order], group[order]
        last = np.ones(len(digest), dtype=bool)
        last[:-1] = digest[1:] != digest[:-1]
        assert isinstance(self.origins, OriginIndex)
        self.origins.remember_digests(digest[last], group[last], origins)
        found = np.full(len(late_rows), -1, dtype=np.int64)
        if not len(late_rows) or not len(digest):
            return found
        # Dense ids for the digests, so that (id, position) packs into one sortable integer.
        unique, dense = np.unique(digest, return_inverse=True)
        packed = (dense.astype(np.int64) << 32) | position
        for keys, present in zip(columns.keys, columns.has_key, strict=True):
            todo = (found < 0) & present[late_rows]
            if not todo.any():
                continue
            wanted = keys[late_rows[todo]]
            slot = np.searchsorted(unique, wanted)
            known = slot < len(unique)
            known[known] = unique[slot[known]] == wanted[known]
            query = (slot.astype(np.int64) << 32) | late_rows[todo]
            before = np.searchsorted(packed, query) - 1  # the latest registration before the record
            hit = known & (before >= 0)
            hit[hit] = (packed[before[hit]] >> 32) == slot[hit]
            answer = np.full(len(wanted), -1, dtype=np.int64)
            answer[hit] = group[before[hit]]
            found[todo] = answer
        return found

    def _collect_columns(
        self,
        columns: RecordColumns,
        fresh: np.ndarray,
        hard_rows: np.ndarray,
        hard_groups: np.ndarray,
        late_rows: np.ndarray,
        late_groups: np.ndarray,
        late_kinds: np.ndarray,
        late_classes: np.ndarray,
        origins: list[Origin],
    ) -> None:
        hours = columns.hour[fresh]
        for hour in np.unique(hours).tolist():
            chosen = fresh[hours == hour].tolist() if len(fresh) else []
            identity = columns.identity
            self._fresh.setdefault(hour, []).extend([identity[index] for index in chosen])
        complaint = late_kinds == _F
        late_hard = np.zeros(len(late_rows), dtype=bool)
        late_hard[~complaint] = late_classes == _HARD
        chosen_late = complaint | late_hard
        rows = np.concatenate((hard_rows, late_rows[chosen_late]))
        groups = np.concatenate((hard_groups, late_groups[chosen_late]))
        kinds = np.concatenate((np.zeros(len(hard_rows), dtype=bool), complaint[chosen_late]))
        order = np.argsort(rows, kind="stable")
        rows, groups, kinds = rows[order], groups[order], kinds[order]
        for record, group, is_complaint in zip(columns.records(rows), groups.tolist(), kinds.tolist(), strict=True):
            what = NotableKind.COMPLAINT if is_complaint else NotableKind.HARD_BOUNCE
            self._notable.append(Notable(what, record, *origins[group]))

    def resolve_pending(self) -> int:
        """Attribute the rb/f records whose originals have arrived since; returns how many were counted."""
        waiting, self._pending = self._pending, []
        counted = sum(1 for record in waiting if self._add_late(record) == _COUNTED)
        self._tally[_PENDING] -= counted
        self._tally[_COUNTED] += counted
        return counted

    def _provider(self, domain: str) -> tuple[ProviderGroup, str]:
        """The group of a recipient's domain (as written after the "@"), and its value as a plain string for the
        counters' keys; cached by the domain as written."""
        group = self.provider_for(domain.strip().rstrip(".").lower())
        found = self._providers[domain] = (group, group.value)
        return found

    def _throttled(self, record: AccountingRecord, group: ProviderGroup) -> bool:
        """`classify_deferral`, cached per group and reply text (receivers repeat the same few replies)."""
        replies = self._throttling.get(group.value)
        if replies is None or len(replies) >= _REPLY_CACHE_LIMIT:
            replies = self._throttling[group.value] = {}
        throttled = replies[record.dsn_diag] = classify_deferral(record, group=group).throttling
        return throttled

    def _day(self, address: str, moment: datetime) -> date:
        """`local_day` with two caches: by the very datetime, in a table per time zone that the zone's addresses
        share (the parser hands out one object per timestamp text), then by the quarter hour of the instant --
        every time zone's offset is a whole number of quarter hours, so a local midnight always falls on a quarter
        hour and the whole quarter has one local day. Converting to a zone is the costly part; it is done once per
        zone and quarter hour."""
        zone = self._zones.get(address)
        if zone is None:
            zone = self._zones[address] = self.timezone_for(address)
        aware = moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)
        quarter = (zone, int(aware.timestamp()) // 900)
        day = self._quarters.get(quarter)
        if day is None:
            if len(self._quarters) >= _DAY_CACHE_LIMIT:
                self._quarters.clear()
            day = self._quarters[quarter] = local_day(aware, zone)
        days = self._zone_days.get(zone)
        if days is None or len(days) >= _DAY_CACHE_LIMIT:
            days = self._zone_days[zone] = {}
        days[moment] = day
        self._days[address] = days
        return day

    def _add_late(self, record: AccountingRecord) -> int:
        origin = self.origins.find(record)
        if origin is None:
            self._pending.append(record)
            return _PENDING
        bucket = self._totals.get(origin)
        if bucket is None:
            bucket = self._totals[origin] = [0, 0, 0, 0, 0, 0, 0, 0]
        if record.type is RecordType.FEEDBACK:
            bucket[_COMPLAINED] += 1
            if self.collect:
                self._notable.append(Notable(NotableKind.COMPLAINT, record, *origin))
        elif _count_bounce(bucket, record.bounce_cat) is BounceClass.HARD and self.collect:
            self._notable.append(Notable(NotableKind.HARD_BOUNCE, record, *origin))
        return _COUNTED


def _source_address(dlv_source_ip: str) -> str:
    """dlvSourceIp as an address ("" when absent or not an IP): the fallback when the VMTA says nothing."""
    if not dlv_source_ip:
        return ""
    try:
        return str(ip_address(dlv_source_ip))
    except ValueError:
        return ""


_BOUNCE_CLASSES: dict[str, BounceClass] = {}


def _count_bounce(bucket: list[int], bounce_cat: str) -> BounceClass:
    kind = _BOUNCE_CLASSES.get(bounce_cat)
    if kind is None:
        kind = bounce_class(bounce_cat)
        if len(_BOUNCE_CLASSES) < 1000:  # PowerMTA has a few dozen categories; junk is not remembered
            _BOUNCE_CLASSES[bounce_cat] = kind
    bucket[_BOUNCE_COUNTER[kind]] += 1
    return kind
