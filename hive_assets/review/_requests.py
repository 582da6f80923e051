"""`review_requests` documents: one per requested opinion, their daily budget, expiry and answers.

A request's id is `review:<specialist>:<opinion_id>`: an opinion is requested at most once, and writing
is `insert_new` (a rerun never resets a request already answered or expired). An `active` request can
later become `random` (a later day's random draw took its opinion: `made_random_at` says when), never the
reverse; nothing else of a request changes but its status. Status moves
open -> answered (a trusted label arrived before it expired: `feedback_id`, `answered_at` are set, for the
latest such label as of the expiry; a correction after it changes neither) or open -> expired (`expires_at`
passed first); nothing moves back. One rule says what an open request is at a time (`status_at`, with the labels
of `labels_as_of`), for the refresh, the open queue and the counts alike: a request whose opinion got a label
submitted before the request was made is neither answered nor open (the label is organic, and there is nothing
left to ask), until it expires.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime, timedelta, timezone
from typing import Any, NamedTuple

from hive_assets.data import TrustPolicy, is_number, latest_trusted_feedback, to_utc
from hive_assets.data.store.base import DocumentStore
from hive_assets.review._select import ACTIVE, RANDOM, DaySoFar, QueueChoice

COLLECTION = "review_requests"
OPEN, ANSWERED, EXPIRED = "open", "answered", "expired"
STATUSES = (OPEN, ANSWERED, EXPIRED)


def request_id(specialist: str, opinion_id: str) -> str:
    return f"review:{specialist}:{opinion_id}"


def day_start(now: datetime) -> datetime:
    """00:00 UTC of `now`'s day: the daily budget counts requests made in [day_start, next day_start)."""
    now = now.astimezone(timezone.utc)
    return now.replace(hour=0, minute=0, second=0, microsecond=0)


def requested_today(store: DocumentStore, specialist: str, now: datetime) -> int:
    """Requests made on `now`'s UTC day, later hours included: a clock moved back within the day does not
    give the day its budget again, and one moved back to an earlier day does not spend that day's."""
    start = day_start(now)
    return store.count(COLLECTION, {"specialist_type": specialist,
                                    "requested_at": {"$gte": start, "$lt": start + timedelta(days=1)}})


def remaining_budget(store: DocumentStore, specialist: str, now: datetime, daily_budget: int,
                     made_today: int | None = None) -> int:
    """What today's budget still allows (never negative); `made_today`: the day's requests when the caller
    has counted them already (`day_so_far`), else counted here."""
    if daily_budget < 0:
        raise ValueError(f"daily_budget must be >= 0, got {daily_budget}")
    if not daily_budget:
        return 0
    made = requested_today(store, specialist, now) if made_today is None else made_today
    return max(0, int(daily_budget) - made)


def requested_opinions(store: DocumentStore, specialist: str, opinion_ids: Iterable[str]) -> set[str]:
    """The opinions among `opinion_ids` already requested (whatever the status)."""
    return {str(d["opinion_id"]) for d in store.find_by_keys_where(
        COLLECTION, "opinion_id", opinion_ids, {"specialist_type": specialist}, projection=["opinion_id"])}


def request_selections(store: DocumentStore, specialist: str, opinion_ids: Iterable[str]) -> dict[str, str]:
    """opinion_id -> the `selection` of its request, for the opinions among `opinion_ids` already requested
    ("" for a request whose selection or id is not what a refresh wrote: left as it is)."""
    found = {}
    for d in store.find_by_keys_where(COLLECTION, "opinion_id", opinion_ids, {"specialist_type": specialist},
                                      projection=["opinion_id", "request_id", "selection"]):
        opinion_id = str(d["opinion_id"])
        sound = d.get("request_id") == request_id(specialist, opinion_id) and d.get("selection") in (ACTIVE, RANDOM)
        found[opinion_id] = str(d["selection"]) if sound else ""
    return found


def day_so_far(store: DocumentStore, specialist: str, now: datetime) -> DaySoFar:
    """What the requests say of `now`'s UTC day: made today (by `requested_at`, as the budget counts them),
    of which made as random; random selections made today (those, and requests made random today, by
    `made_random_at`); the day's highest rank."""
    start = day_start(now)
    day = {"$gte": start, "$lt": start + timedelta(days=1)}
    made = list(store.find(COLLECTION, {"specialist_type": specialist, "requested_at": day},
                           projection=["selection", "rank", "made_random_at"]))
    random_requested = sum(d.get("selection") == RANDOM and d.get("made_random_at") is None for d in made)
    made_random_later = store.count(COLLECTION, {"specialist_type": specialist, "made_random_at": day})
    ranks = [d["rank"] for d in made if isinstance(d.get("rank"), int) and not isinstance(d.get("rank"), bool)]
    return DaySoFar(requested=len(made), random_requested=random_requested,
                    made_random=random_requested + made_random_later, max_rank=max(ranks, default=0))


def make_random(store: DocumentStore, specialist: str, opinion_id: str, now: datetime, rate: float) -> int:
    """The opinion's `active` request becomes `random` (the day's random draw took it), with the draw's rate
    and `made_random_at`; a request already random is left as it is. Returns 1 if it changed."""
    return store.update_one(COLLECTION, {"request_id": request_id(specialist, opinion_id), "selection": ACTIVE},
                            {"selection": RANDOM, "inclusion_probability": rate, "made_random_at": now})


def malformed_fields(doc: Mapping[str, Any]) -> list[str]:
    """The fields a reader needs that `doc` lacks or holds in no usable form (a reviewer tool's or an
    import's edit: `rank` as text, `score` null, a date that is no time); [] for a sound request."""
    def text(value: Any) -> bool:
        return isinstance(value, str) and bool(value)

    bad = [name for name in ("request_id", "opinion_id", "reason", "selection") if not text(doc.get(name))]
    rank = doc.get("rank")
    if not (isinstance(rank, int) and not isinstance(rank, bool)):
        bad.append("rank")
    score = doc.get("score")
    if not (is_number(score) and not isinstance(score, bool) and math.isfinite(score)):
        bad.append("score")
    bad += [name for name in ("requested_at", "expires_at") if to_utc(doc.get(name)) is None]
    if doc.get("status") not in STATUSES:
        bad.append("status")
    return bad


def describe_malformed(malformed: Sequence[tuple[str, list[str]]], shown: int = 3) -> str:
    """`n malformed review request(s) left out (id: fields, ...)`: the one line readers print or log."""
    ids = ", ".join(f"{rid}: {'/'.join(fields)}" for rid, fields in malformed[:shown])
    more = f", and {len(malformed) - shown} more" if len(malformed) > shown else ""
    return (f"{len(malformed)} malformed review request{'s' * (len(malformed) != 1)} left out ({ids}{more}); "
            "fix or delete them in review_requests")


def request_documents(specialist: str, opinions: Sequence[Mapping[str, Any]], choice: QueueChoice, now: datetime,
                      expiry: timedelta, model_version: str | None = None, first_rank: int = 1) -> list[dict[str, Any]]:
    """One document per chosen candidate, ranked in queue order from `first_rank` on; `opinions[i]` holds
    `opinion_id` and `plan_id` of candidate i."""
    docs = []
    for rank, (i, selection, score, reason, p) in enumerate(zip(
            choice.index, choice.selection, choice.score, choice.reason, choice.inclusion_probability),
            start=first_rank):
        opinion = opinions[int(i)]
        docs.append({
            "request_id": request_id(specialist, str(opinion["opinion_id"])),
            "opinion_id": str(opinion["opinion_id"]), "plan_id": str(opinion["plan_id"]),
            "specialist_type": specialist, "score": round(float(score), 6), "reason": reason,
            "selection": selection, "inclusion_probability": p, "rank": rank,
            "model_version": model_version, "requested_at": now, "expires_at": now + expiry,
            "status": OPEN, "feedback_id": None, "answered_at": None, "made_random_at": None,
        })
    return docs


def write_requests(store: DocumentStore, docs: Iterable[Mapping[str, Any]]) -> int:
    """Insert the requests not yet in the store, one by one in the order given (rank order: what a rerun
    after a failure part-way continues); returns how many were new."""
    return sum(store.insert_new(COLLECTION, doc) for doc in docs)


def link_answers(store: DocumentStore, specialist: str, now: datetime, trust: TrustPolicy = TrustPolicy()) -> int:
    """Open requests whose opinion now has a trusted label submitted before the request expired become
    `answered`, with the id and time of the latest such label (as of the expiry, or `now` if earlier: a
    correction after the expiry does not hide the answer in time). Returns how many were linked."""
    # a malformed request (no id, no readable expiry) cannot be judged: left open as it is, `open_queue` names it
    open_requests = {str(r["opinion_id"]): r for r in store.find(COLLECTION, {"specialist_type": specialist,
                                                                               "status": OPEN})
                     if r.get("opinion_id") and r.get("request_id") and to_utc(r.get("expires_at")) is not None}
    # a label only after the expiry is none here: `expire` closes the request, the label is an organic one
    labels = labels_as_of(store, open_requests, now, trust)
    linked = 0
    for opinion_id, fb in sorted(labels.items()):
        request = open_requests[opinion_id]
        if status_at(request, fb, now) != ANSWERED:  # the latest label as of the expiry came before the request
            continue
        linked += store.update_one(COLLECTION, {"request_id": request["request_id"], "status": OPEN},
                                   {"status": ANSWERED, "feedback_id": str(fb["feedback_id"]),
                                    "answered_at": fb["_submitted"]})
    return linked


def is_answer(request: Mapping[str, Any], submitted: datetime | None) -> bool:
    """Whether a label submitted at `submitted` answers `request`: from its `requested_at` to its `expires_at`.
    One submitted before the request came whatever the queue did (it arrived late, or its time was set by a
    client): an organic label, not the request's answer. An unknown time on either side does not rule it out."""
    submitted = to_utc(submitted)
    if submitted is None:
        return True
    requested, expires = to_utc(request.get("requested_at")), to_utc(request.get("expires_at"))
    return (requested is None or requested <= submitted) and (expires is None or submitted <= expires)


def labels_as_of(store: DocumentStore, requests: Mapping[str, Mapping[str, Any]], at: datetime,
                 trust: TrustPolicy = TrustPolicy()) -> dict[str, dict]:
    """opinion_id -> the latest trusted label of each request's opinion known at `at`, as of the request's
    expiry (or `at` if earlier: a correction after the expiry does not hide the answer in time); `requests`:
    opinion_id -> request, each with a readable `expires_at`. What `status_at` judges."""
    if not requests:
        return {}
    return latest_trusted_feedback(store, requests, at, trust, as_of=_expiries(requests))[0]


def status_at(request: Mapping[str, Any], label: Mapping[str, Any] | None, at: datetime) -> str | None:
    """What a request still `open` in the store is at `at`, its opinion's label being `label` (`labels_as_of`, or
    None): ANSWERED when the label came while the request was open (`is_answer`: what the next refresh links);
    else EXPIRED once `expires_at` passed; else None when the opinion has a label submitted before the request
    was made (organic: not the request's answer, and nothing left to ask, so out of the open queue and of its
    count until it expires); else OPEN. The one rule of `link_answers`, `read_open_queue` (`hive review-queue`)
    and `queue_summary` (`hive status`, `hive loop`)."""
    if label is not None and is_answer(request, label.get("_submitted")):
        return ANSWERED
    expires = to_utc(request.get("expires_at"))
    if expires is not None and expires <= at:
        return EXPIRED
    return None if label is not None else OPEN


def _expiries(requests: Mapping[str, Mapping[str, Any]]) -> dict[str, datetime]:
    return {opinion_id: to_utc(r["expires_at"]) for opinion_id, r in requests.items()}


def expire(store: DocumentStore, specialist: str, now: datetime) -> int:
    """Open requests past `expires_at` become `expired`. Returns how many."""
    expired = 0
    for request in store.find(COLLECTION, {"specialist_type": specialist, "status": OPEN,
                                           "expires_at": {"$lte": now}}):
        if not request.get("request_id"):  # malformed: nothing to update it by
            continue
        expired += store.update_one(COLLECTION, {"request_id": request["request_id"], "status": OPEN},
                                    {"status": EXPIRED})
    return expired


class OpenQueue(NamedTuple):
    requests: list[dict]  # sound requests, in queue order
    malformed: list[tuple[str, list[str]]]  # (request_id, bad fields) of the open ones left out, by id


def open_queue(store: DocumentStore, specialist: str, now: datetime, limit: int | None = None,
               trust: TrustPolicy = TrustPolicy()) -> list[dict]:
    """`read_open_queue`'s requests: the sound ones in queue order."""
    return read_open_queue(store, specialist, now, limit, trust).requests


def read_open_queue(store: DocumentStore, specialist: str, now: datetime, limit: int | None = None,
                    trust: TrustPolicy = TrustPolicy()) -> OpenQueue:
    """The open, unexpired, still unanswered requests of `specialist` made by `now` (one dated later, made
    before the clock was moved back, was not made yet as of `now`), in queue order: oldest day first, then
    by rank (the active picks by priority, the random share spread evenly among them, so reviewers who stop
    part-way still answer a uniformly random part of it). What a reviewer UI or the simulator's reviewers
    read. Open is `status_at`'s OPEN: a request whose opinion already has a trusted label is left out though its
    status stays `open` (this reads only): one answered until the next refresh links it, not asked twice
    meanwhile; one labelled before it was made (organic) until it expires.
    A malformed request (`malformed_fields`) cannot be placed in that order: it is left out of `requests`
    and named in `malformed`, and stays in the store as it is."""
    # every open request, placed in time here: the store's range filters passed over a date held as text or
    # missing, so such a request left the queue unnamed. The status stays an equality (FerretDB pushes it
    # down; a `$nin` would read every request ever made, answered and expired ones included)
    found = store.find(COLLECTION, {"specialist_type": specialist, "status": OPEN})
    docs, malformed = {}, []
    for d in found:
        requested, expires = to_utc(d.get("requested_at")), to_utc(d.get("expires_at"))
        if (requested is not None and requested > now) or (expires is not None and expires <= now):
            continue  # not made yet as of `now`, or expired: in no queue, sound or not
        if bad := malformed_fields(d):
            malformed.append((str(d.get("request_id")), bad))
        else:
            docs[str(d["opinion_id"])] = d
    labels = labels_as_of(store, docs, now, trust)
    ordered = [d for opinion_id, d in docs.items() if status_at(d, labels.get(opinion_id), now) == OPEN]
    ordered.sort(key=lambda d: (to_utc(d["requested_at"]), d["rank"], d["request_id"]))
    return OpenQueue(ordered[:limit] if limit is not None else ordered, sorted(malformed))


def queue_summary(store: DocumentStore, specialist: str, since: datetime, until: datetime,
                  trust: TrustPolicy = TrustPolicy(), *, include_since: bool = False) -> dict[str, int]:
    """What the queue did in (since, until] (`include_since`: in [since, until]): requests made, answered and
    expired in the period (whenever they were made), and how many are open at `until`; each request taken
    at the status a refresh at `until` would give it (an answer or an expiry not linked yet counts), open as
    `read_open_queue` has it (`status_at`: one labelled before it was made is not open, nor answered). Reads
    only. Consecutive periods of `hive loop` split time with (since, until]; a budget day starts at 00:00
    itself (`today_summary`). Requests whose dates or status cannot be read are counted under `malformed`
    (the key is there only then)."""
    def in_period(at: datetime) -> bool:
        return since <= at if include_since else since < at

    # a request answered or expired in the period expires in it or after it; the open ones are all read and placed
    # in time here, as `read_open_queue` reads them: the store's date filters passed over a date held as text or
    # missing, and the two disagreed (`hive status` 16 open, `hive review-queue` 7 and 10 malformed, on one home)
    window = {"requested_at": {"$lte": until}, "expires_at": {"$gte" if include_since else "$gt": since}}
    fields = ["request_id", "opinion_id", "reason", "selection", "rank", "score", "status", "requested_at",
              "expires_at", "answered_at"]
    docs = [d for status in (ANSWERED, EXPIRED)  # equalities: FerretDB pushes them down, a `$in` it would not
            for d in store.find(COLLECTION, {"specialist_type": specialist, "status": status, **window},
                                projection=fields)]
    for d in store.find(COLLECTION, {"specialist_type": specialist, "status": OPEN}, projection=fields):
        requested, expires = to_utc(d.get("requested_at")), to_utc(d.get("expires_at"))
        if (requested is None or requested <= until) and (expires is None or (
                since <= expires if include_since else since < expires)):
            docs.append(d)

    def malformed(d: dict[str, Any]) -> bool:
        """No dates to place it in time by; open at `until` and not one the queue can serve (`malformed_fields`:
        a rank, an opinion...); answered without its answer's time."""
        expires = to_utc(d.get("expires_at"))
        if to_utc(d.get("requested_at")) is None or expires is None:
            return True
        if d["status"] == OPEN:
            return expires > until and bool(malformed_fields(d))
        return d["status"] == ANSWERED and to_utc(d.get("answered_at")) is None

    sound = [d for d in docs if not malformed(d)]
    n_malformed, docs = len(docs) - len(sound), sound
    waiting = {str(d["opinion_id"]): d for d in docs if d["status"] == OPEN}
    labels = labels_as_of(store, waiting, until, trust)
    counts = dict.fromkeys(("requested", ANSWERED, EXPIRED, OPEN), 0)
    for d in docs:
        if d["status"] == OPEN:  # as a refresh at `until` would find it, with the queue's rule
            fb = labels.get(str(d["opinion_id"]))
            status = status_at(d, fb, until)
            answered_at = fb["_submitted"] if status == ANSWERED else None
        else:
            answered_at = to_utc(d["answered_at"]) if d["status"] == ANSWERED else None
            if answered_at is not None and answered_at <= until:  # (a later answer was not known at `until`)
                status = ANSWERED
            else:
                status = EXPIRED if to_utc(d["expires_at"]) <= until else OPEN
        counts["requested"] += in_period(to_utc(d["requested_at"]))
        counts[ANSWERED] += status == ANSWERED and in_period(answered_at)
        counts[EXPIRED] += status == EXPIRED
        counts[OPEN] += status == OPEN
    if n_malformed:  # only then: a sound queue's summary keeps its four counts
        counts["malformed"] = n_malformed
    return counts


def today_summary(store: DocumentStore, specialist: str, now: datetime,
                  trust: TrustPolicy = TrustPolicy()) -> dict[str, int]:
    """The queue on `now`'s UTC day, the budget's period (`hive status`): `requested` is the budget's own
    count (`requested_today`, a refresh at 00:00 included), answered and expired in [day_start, now], and
    how many are open at `now`."""
    return {**queue_summary(store, specialist, day_start(now), now, trust, include_since=True),
            "requested": requested_today(store, specialist, now)}
