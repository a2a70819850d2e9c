"""The simulated list and what the receivers answer, as the PowerMTA accounting records campaign-gateway reads.

Public API:
    LIST_MIX                          -- the list's share per provider group (Gmail-heavy, French consumers)
    RECIPIENT_DOMAIN                  -- the recipient domain used for each group (classified by campaign-gateway)
    FEEDBACK_LOOPS                    -- the groups whose receivers report complaints per message
    list_by_provider(size) -> dict[ProviderGroup, int]
    DayMail(evening, overnight)       -- one IP's records of one day: what is known that evening, what comes at night
    day_records(*, rng, address, day, day_number, by_provider, stop_at, zone, bounce_rate, gmail_throttle_rate)
        -> DayMail

One IP's day (`day_records`), its messages spread evenly over the sending hours 09:00-21:00 local:
  - a message queued after `stop_at` is not sent (its MailWizz server was switched off: a standby);
  - bounces: about 0.8 % of what is sent (`bounce_rate` on a bad day), a third of them asynchronous: `b` records
    at once, `rb` records overnight (they land on the day of their message, by envId and recipient);
  - deferrals (`t` records, each for a message delivered later): Microsoft `451 4.7.650` on 1-4 attempts and Yahoo
    `[TSS04]` on 1-3 on most days of the first five weeks (now and then a bad Microsoft day: a fifth of its
    attempts), fewer afterwards; Orange's `OFR004_104` connection limit (capacity, not reputation) most days;
    Gmail's `421-4.7.28` on `gmail_throttle_rate` of the Gmail attempts when the scenario says so;
  - complaints (`f` records): 0.03 % of what feedback-loop receivers deliver, half the same day, half overnight.
Every count is drawn from `rng`, which the engine seeds per IP and day: the same seed gives the same records.
"""

from __future__ import annotations

import math
import random
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from functools import partial
from zoneinfo import ZoneInfo

from campaign_gateway.domain.accounting import AccountingRecord, RecordType
from campaign_gateway.domain.pmta_config import vmta_name
from campaign_gateway.domain.providers import ProviderGroup
from simulation.scenarios import GMAIL_THROTTLING_REPLY

G = ProviderGroup
LIST_MIX: Mapping[ProviderGroup, float] = {
    G.GMAIL: 0.55,
    G.ORANGE: 0.12,
    G.MICROSOFT: 0.10,
    G.FREE: 0.06,
    G.YAHOO: 0.05,
    G.SFR: 0.04,
    G.ICLOUD: 0.03,
    G.LAPOSTE: 0.02,
    G.GMX: 0.01,
    G.OTHER: 0.02,
}
RECIPIENT_DOMAIN: Mapping[ProviderGroup, str] = {
    G.GMAIL: "gmail.com",
    G.ORANGE: "orange.fr",
    G.MICROSOFT: "hotmail.fr",
    G.FREE: "free.fr",
    G.YAHOO: "yahoo.fr",
    G.SFR: "sfr.fr",
    G.ICLOUD: "icloud.com",
    G.LAPOSTE: "laposte.net",
    G.GMX: "gmx.de",
    G.OTHER: "bbox.fr",
}
FEEDBACK_LOOPS = frozenset({G.MICROSOFT, G.YAHOO, G.ORANGE, G.SFR, G.LAPOSTE, G.OTHER})
BOUNCE_RATE = 0.008
COMPLAINT_RATE = 0.0003
YOUNG_DAYS = 35
SENDING_START = time(9)
SENDING_MINUTES = 12 * 60

_MICROSOFT_REPLY = (
    "smtp;451 4.7.650 The mail server [{address}] has been temporarily rate limited due to IP reputation. "
    "For e-mail delivery information, see https://postmaster.live.com (S775)"
)
_YAHOO_REPLY = (
    "smtp;421 4.7.0 [TSS04] Messages from {address} temporarily deferred due to unexpected volume or user "
    "complaints - 4.16.55.1; see https://postmaster.yahooinc.com/error-codes"
)
_ORANGE_REPLY = "smtp;421 mwinf5c10 ME Trop de connexions, veuillez verifier votre configuration. OFR004_104 [104]"
_HARD_BOUNCE = ("5.1.1", "smtp;550 5.1.1 <{rcpt}>: Recipient address rejected: User unknown", "bad-mailbox")
_FULL_BOUNCE = ("5.2.2", "smtp;552 5.2.2 <{rcpt}>: Mailbox full", "quota-issues")


def list_by_provider(size: int) -> dict[ProviderGroup, int]:
    """The day's list broken down by provider group (the shares of LIST_MIX, rounded)."""
    return {group: round(size * share) for group, share in LIST_MIX.items()}


def poisson(rng: random.Random, mean: float) -> int:
    """A Poisson draw (Knuth for small means, the normal approximation above 200), so rare events stay whole."""
    if mean <= 0:
        return 0
    if mean > 200:
        return max(0, round(rng.gauss(mean, math.sqrt(mean))))
    limit, count, product = math.exp(-mean), 0, rng.random()
    while product > limit:
        count += 1
        product *= rng.random()
    return count


@dataclass
class DayMail:
    """One IP's accounting records for one day."""

    evening: list[AccountingRecord] = field(default_factory=list)
    """Known by the evening: deliveries, bounces, deferrals and the complaints reported the same day."""
    overnight: list[AccountingRecord] = field(default_factory=list)
    """Arriving overnight, before the next decision: asynchronous bounces and the other complaints."""

    @property
    def sent(self) -> int:
        return sum(1 for r in self.evening if r.type in (RecordType.DELIVERED, RecordType.BOUNCED))


def _minutes(day: date, zone: ZoneInfo) -> list[datetime]:
    """The sending minutes of the local day, as UTC instants (shared objects: the aggregator caches by instant)."""
    start = datetime.combine(day, SENDING_START, tzinfo=zone).astimezone(UTC)
    return [start + timedelta(minutes=m) for m in range(SENDING_MINUTES)]


def _deferrals(rng: random.Random, group: ProviderGroup, sent: int, young: bool, gmail_rate: float) -> tuple[int, str]:
    """How many attempts the group defers that day, and with which reply."""
    if not sent:
        return 0, ""
    if group is G.MICROSOFT:
        if young and rng.random() < 0.05:
            return max(1, round(0.25 * sent)), _MICROSOFT_REPLY
        if rng.random() < (0.8 if young else 0.2):
            return rng.randint(1, 4 if young else 2), _MICROSOFT_REPLY
    elif group is G.YAHOO and rng.random() < (0.7 if young else 0.2):
        return rng.randint(1, 3 if young else 1), _YAHOO_REPLY
    elif group is G.ORANGE:
        return rng.randint(0, 5), _ORANGE_REPLY
    elif group is G.GMAIL and gmail_rate > 0:
        # `gmail_rate` of the attempts (sent + deferred) are deferrals.
        return poisson(rng, sent * gmail_rate / (1 - gmail_rate)), GMAIL_THROTTLING_REPLY
    return 0, ""


_new_record = tuple.__new__
_DELIVERED = RecordType.DELIVERED
_ACCEPTED = "smtp;250 2.0.0 OK"


def _delivered(queued: datetime, rcpt: str, vmta: str, env_id: str, message_id: str) -> AccountingRecord:
    """A `d` record, built as a plain tuple: it is most of the records, and this runs once per message."""
    fields = (_DELIVERED, queued, queued, "", rcpt, vmta, "2.0.0", _ACCEPTED, "", env_id, "1", message_id, "", "")
    return _new_record(AccountingRecord, fields)  # type: ignore[no-any-return]


@dataclass(frozen=True)
class _Message:
    """One message of the day, and the accounting records PowerMTA writes about it (fields as it writes them)."""

    queued: datetime
    rcpt: str
    message_id: str
    vmta: str
    env_id: str

    def bounce(self, reply: tuple[str, str, str]) -> AccountingRecord:
        status, diag, category = reply
        return AccountingRecord(
            RecordType.BOUNCED, self.queued, self.queued, "", self.rcpt, self.vmta, status,
            diag.format(rcpt=self.rcpt), category, self.env_id, "1", self.message_id,
        )  # fmt: skip

    def deferral(self, diag: str, retry: int) -> AccountingRecord:
        logged = self.queued + timedelta(seconds=1 + retry)
        return AccountingRecord(
            RecordType.TRANSIENT, logged, self.queued, "", self.rcpt, self.vmta, "4.7.0", diag, "", self.env_id,
            "1", self.message_id,
        )  # fmt: skip

    def remote_bounce(self, logged: datetime) -> AccountingRecord:
        """An asynchronous bounce: an `rb` record has no VMTA, no queue time and no Message-Id (its original is
        found by envId and recipient)."""
        status, diag, category = _HARD_BOUNCE
        return AccountingRecord(
            RecordType.REMOTE_BOUNCE, logged, None, "", self.rcpt, "", status, diag.format(rcpt=self.rcpt),
            category, self.env_id, "", "",
        )  # fmt: skip

    def complaint(self, logged: datetime) -> AccountingRecord:
        return AccountingRecord(
            RecordType.FEEDBACK, logged, None, "", self.rcpt, "", "", "", "", self.env_id, "", self.message_id,
            feedback_type="abuse",
        )  # fmt: skip


def _message(
    queued: list[datetime], rcpts: list[str], message_ids: list[str], vmta: str, env_id: str, k: int
) -> _Message:
    return _Message(queued[k], rcpts[k], message_ids[k], vmta, env_id)


def day_records(
    *,
    rng: random.Random,
    address: str,
    day: date,
    day_number: int,
    by_provider: Mapping[ProviderGroup, int],
    stop_at: datetime | None,
    zone: ZoneInfo,
    bounce_rate: float | None = None,
    gmail_throttle_rate: float = 0.0,
) -> DayMail:
    """The records of what `address` was given (`by_provider`) on `day` (module docstring)."""
    minutes = _minutes(day, zone)
    overnight_at = datetime.combine(day + timedelta(days=1), time(2), tzinfo=zone).astimezone(UTC)
    evening_at = datetime.combine(day, time(22), tzinfo=zone).astimezone(UTC)
    vmta = vmta_name(address)
    env_id = f"campaign-{day.isoformat()}"
    tag = address.replace(".", "-").replace(":", "-")
    young = day_number <= YOUNG_DAYS
    mail = DayMail()
    for group in ProviderGroup:
        given = by_provider.get(group, 0)
        if not given:
            continue
        domain = RECIPIENT_DOMAIN[group]
        queued = [minutes[k * SENDING_MINUTES // given] for k in range(given)]
        if stop_at is not None:
            queued = [moment for moment in queued if moment < stop_at]
        sent = len(queued)
        if not sent:
            continue
        rcpts = [f"r{k}.{tag}@{domain}" for k in range(sent)]
        message_ids = [f"{day_number}.{k}.{group}@{tag}.simulation" for k in range(sent)]
        message = partial(_message, queued, rcpts, message_ids, vmta, env_id)

        bounces = min(sent, poisson(rng, sent * (bounce_rate if bounce_rate is not None else BOUNCE_RATE)))
        bounced = set(rng.sample(range(sent), bounces))
        late = set(rng.sample(sorted(bounced), min(bounces, poisson(rng, bounces / 3)))) if bounces else set()
        at_once = bounced - late
        for k in range(sent):
            if k in at_once:
                mail.evening.append(message(k).bounce(_FULL_BOUNCE if k % 5 == 0 else _HARD_BOUNCE))
            else:
                mail.evening.append(_delivered(queued[k], rcpts[k], vmta, env_id, message_ids[k]))
        # An asynchronous bounce follows a delivery: the receiving MTA accepted the message, then bounced it.
        mail.overnight += [message(k).remote_bounce(overnight_at) for k in sorted(late)]
        deferred, reply = _deferrals(rng, group, sent, young, gmail_throttle_rate)
        diag = reply.format(address=address)
        mail.evening += [message(n % sent).deferral(diag, retry=n // sent) for n in range(deferred)]
        if group in FEEDBACK_LOOPS:
            delivered = [k for k in range(sent) if k not in bounced]
            complaints = min(len(delivered), poisson(rng, len(delivered) * COMPLAINT_RATE))
            for n, k in enumerate(rng.sample(delivered, complaints)):
                if n % 2 == 0:
                    mail.evening.append(message(k).complaint(evening_at))
                else:
                    mail.overnight.append(message(k).complaint(overnight_at))
    return mail
