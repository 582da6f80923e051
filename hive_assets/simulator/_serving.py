"""The simulator's serving loop: opinions served as production would (SPEC section 7)."""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from hive_assets.config import SPECIALISTS
from hive_assets.data import to_utc
from hive_assets.serving import SpecialistRouter, routers_for
from hive_assets.simulator._simulate import OpinionModel, heuristic_opinion


def served_opinions(routers: Mapping[str, SpecialistRouter]) -> OpinionModel:
    """(specialist, plans) -> opinions through each specialist's `SpecialistRouter`, exactly as a
    specialist service serves them: the champion's, and the challenger's for the units the running test
    routes to it (with ab_test_id / ab_arm); the pre-platform heuristic where no champion is loaded."""

    def serve(specialist: str, plans: list[dict]):
        router = routers.get(specialist)
        opinions = router.evaluate_many(plans) if router is not None else None
        if opinions is None:
            return [(*heuristic_opinion(specialist, p), {}) for p in plans]
        return [(o.recommendation, round(o.confidence, 4), o.model_version, o.metadata) for o in opinions]

    return serve


def refresh_all(routers: Mapping[str, SpecialistRouter]) -> str | None:
    """Refresh every router now; the registry's error if it is unreachable (then the others, on the same
    registry, are not tried: each would wait out MLflow's retries again)."""
    for router in routers.values():
        health = router.refresh()
        if health["registry_error"]:
            return health["registry_error"]
    return None


def describe_serving(routers: Mapping[str, SpecialistRouter]) -> str | None:
    """One line naming the served champions and running tests; None when no champion is loaded."""
    health = [r.health() for r in routers.values()]
    ready = [h for h in health if h["ready"]]
    if not ready:
        return None
    return ("opinions served by champions: " + ", ".join(f"{h['specialist']} v{h['champion_version']}" for h in ready)
            + "".join(f"; A/B {h['ab_test_id']} at {h['ab_challenger_traffic_percent']:g}%"
                      for h in ready if h["ab_routing"]))


# a served hour's opinions are evaluated up to 90 + 4 s after their plan, its intent audit events up to 30 s
# before it (simulate); `serve_hour` creates its plans inside the hour by these margins
_OPINION_LAG_S, _AUDIT_LEAD_S = 95, 31


@dataclass(frozen=True)
class DriftInjection:
    """From `onset` on, `specialist` also evaluates a new product line: `share` x plans-per-hour extra
    plans a hour, all of domain `domain`, their risk and size shifted by `shift` (make_plans' drift), and
    judged by its humans `domain_offset` stricter than the hidden policy's known domains. Only this
    specialist sees them: its recent window drifts, the others' does not, and its champion (never
    trained on the domain) disagrees with the humans on them until it is retrained."""

    specialist: str
    onset: datetime
    share: float = 0.5
    domain: str = "PAYMENTS"
    domain_offset: float = 0.8
    shift: float = 0.3


def hour_seed(seed: int, hour: int) -> int:
    """The seed of a loop's `hour`-th served hour: its documents' ids are made from it."""
    return seed * 1_000_003 + hour


PENDING_STATE = "pending_feedback"  # the header document of the answers not yet due (`simulator_state`)
PENDING_CHUNK = 2000  # answers per document: far under MongoDB's 16 MB at ~330 bytes each


def load_pending(store) -> tuple[list[dict], dict[str, float]]:
    """The answers not yet due and the reviewers' unspent credit, as `save_pending` left them (`[]`, `{}` on a
    home no loop saved them in)."""
    header = store.find_one("simulator_state", {"state_id": PENDING_STATE})
    if header is None:
        return [], {}

    def damaged(what: str) -> ValueError:  # e.g. a hand-made `hive store import` of the collection
        return ValueError(f"the answers not yet due that the last loop saved (store collection simulator_state, "
                          f"state_id {PENDING_STATE!r} and its chunks) are damaged: {what}; import the missing "
                          f"documents, or `{{\"state_id\": \"{PENDING_STATE}\", \"slot\": 0, \"chunks\": 0}}` "
                          "to play on without them")

    slot, chunks, credit = header.get("slot"), header.get("chunks"), header.get("review_credit") or {}
    if slot not in (0, 1) or not _whole(chunks) or not isinstance(credit, Mapping):
        raise damaged(f"its header says slot={slot!r}, chunks={chunks!r}, review_credit of type "
                      f"{type(credit).__name__}")
    slot, chunks = int(slot), int(chunks)
    pending: list[dict] = []
    for i in range(chunks):
        chunk = store.find_one("simulator_state", {"state_id": f"{PENDING_STATE}:{slot}:{i}"})
        if chunk is None or not isinstance(chunk.get("answers"), list):
            state = "missing" if chunk is None else "without a list of answers"
            raise damaged(f"chunk {PENDING_STATE}:{slot}:{i} of {chunks} is {state}")
        pending.extend(chunk["answers"])
    for answer in pending:  # the SQLite store gives times back as text
        at = to_utc(answer.get("submitted_at")) if isinstance(answer, Mapping) else None
        if at is None or not isinstance(answer.get("feedback_id"), str):
            raise damaged(f"an answer without a feedback_id or a submitted_at time: {str(answer)[:120]}")
        answer["submitted_at"] = at
    try:
        return pending, {str(k): float(v) for k, v in credit.items()}
    except (TypeError, ValueError):
        raise damaged(f"review_credit is not a number per specialist: {str(credit)[:120]}") from None


def save_pending(store, pending: list[dict], review_credit: Mapping[str, float], *, seed: int | None = None,
                 hours: int | None = None, origin: datetime | None = None) -> None:
    """Keep the answers not yet due in the store, so that the next loop delivers them when due, as one loop
    would have. Two slots: the chunks go to the slot the header does not name, then the header names it,
    so a loop killed in between leaves the previous hour's state whole. `seed`, `hours`: the loop's seed and
    the hours of it served once this state is saved (`interrupted_hour`); `origin`: where the home's first
    loop started (`loop_origin`)."""
    header = store.find_one("simulator_state", {"state_id": PENDING_STATE})
    slot = 1 - int(header["slot"]) if header is not None else 0
    chunks = [pending[i:i + PENDING_CHUNK] for i in range(0, len(pending), PENDING_CHUNK)]
    if chunks:
        store.upsert_many("simulator_state", [{"state_id": f"{PENDING_STATE}:{slot}:{i}", "answers": chunk}
                                              for i, chunk in enumerate(chunks)])
    store.upsert_many("simulator_state", [{"state_id": PENDING_STATE, "slot": slot, "chunks": len(chunks),
                                           "seed": seed, "hours": hours, "origin": origin,
                                           "review_credit": dict(review_credit)}])


def loop_origin(store, seed: int, start: datetime) -> datetime:
    """Where the home's first loop started: a scenario's drift begins hours after it, not after each loop's
    own start, so a loop played in parts injects the drift as one loop does (each part used to stop the new
    domain's traffic again for its first hours). Saved with the state after every hour (`save_pending`), so
    a loop that never served an hour leaves nothing; a home whose state does not say (a first loop, or one
    saved by an older version) counts back from `start` the hours loops of `seed` served before it. Never
    after `start` (a loop played from an earlier `--start` is the first one)."""
    header = store.find_one("simulator_state", {"state_id": PENDING_STATE})
    saved = header.get("origin") if header is not None else None
    if saved is not None:
        at = to_utc(saved)
        if at is None:
            raise ValueError(f"the loop state's origin (store collection simulator_state, state_id "
                             f"{PENDING_STATE!r}) is not a time: {str(saved)[:80]}; import the header with the "
                             "first loop's start as \"origin\", or without it to count back from this loop's")
        return min(at, start)
    return start - timedelta(hours=first_hour(store, seed))


PLAYING = "playing_hour"  # the hour a loop is serving, written before its first document (`simulator_state`)


def interrupted_hour(store, seed: int) -> tuple[int, datetime] | None:
    """(N, its start) when a loop of `seed` was stopped inside its hour N: the hour's documents are stored
    (`hours_served` counts it) but not the state after it (killed mid-hour: its new answers were only in
    the loop's memory). The next loop plays that hour again: the same documents and answers (the same seed),
    the reviewers' credit as it was before it. None when the hour a loop of `seed` played last was complete,
    when it stored nothing, or when a loop of another seed played since."""
    playing = store.find_one("simulator_state", {"state_id": PLAYING})
    hour = playing.get("hour") if playing is not None else None
    if playing is None or playing.get("seed") != seed or not _whole(hour):
        return None
    hour, at = int(hour), to_utc(playing.get("now"))
    header = store.find_one("simulator_state", {"state_id": PENDING_STATE})
    saved = header is not None and header.get("seed") == seed and _whole(header.get("hours")) \
        and int(header["hours"]) == hour + 1
    if at is None or saved or hours_served(store, seed) <= hour:
        return None
    return hour, at - timedelta(hours=1)


def resume_start(interrupted: tuple[int, datetime] | None, start: datetime | None, pinned: datetime | None
                 ) -> tuple[datetime | None, str | None]:
    """Where a loop starts after a loop of its seed was killed inside an hour (`interrupted` =
    `interrupted_hour`): at that hour's start, so it is played again with the same documents and answers,
    unless the loop was given a `start` or the home's clock (`pinned`) has moved on since; then the hour is
    played as the loop's first, at that later time (its documents replaced: none lost, the clock never
    goes back). Returns (start, the line that says so); (start, None) when nothing was interrupted."""
    if interrupted is None:
        return start, None
    at = interrupted[1]
    if start is None and (pinned is None or pinned <= at):
        start = at
    return start, (f"the hour from {at:%Y-%m-%d %H:%M} UTC was interrupted (its answers were not saved): played "
                   "again" + ("" if start == at else " as the loop's first hour"))


def first_hour(store, seed: int) -> int:
    """The hour a loop of `seed` plays first: the one a killed loop left unfinished (`interrupted_hour`), else
    the first it has not served (`hours_served`)."""
    interrupted = interrupted_hour(store, seed)
    return interrupted[0] if interrupted is not None else hours_served(store, seed)


def _whole(value) -> bool:
    """A whole number >= 0, as a store may hold it (an int, a BSON Int64, a double typed in mongosh)."""
    return (isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)
            and value == int(value) and value >= 0)


def hours_served(store, seed: int) -> int:
    """How many hours loops of `seed` already served into `store`: the first hour whose first plan is not
    stored (the hours served are 0, 1, ... without a gap; found in 2 log2(n) lookups by key)."""
    from hive_assets.simulator._simulate import _plan_id

    def served(hour: int) -> bool:
        plan_id = _plan_id(hour_seed(seed, hour), 0)
        return any(store.find_one(c, {"plan_id": plan_id}) is not None for c in ("cognitive_plans", "cognitive_ledger"))

    if not served(0):
        return 0
    low, high = 0, 1  # served(low), and then not served(high)
    while served(high):
        low, high = high, high * 2
    while high - low > 1:
        middle = (low + high) // 2
        low, high = (middle, high) if served(middle) else (low, middle)
    return high


class ServingLoop:
    """Production hour by hour, for closed-loop simulation on an injected clock.

    Each `serve_hour(now)` writes the plans (and intent audit events) created in the hour before `now`,
    the opinions served for them (the registered champion, and the challenger for the units the running
    A/B test routes to it, with `metadata.ab_test_id` / `ab_arm` and the serving `specialist_version`;
    the heuristic where no champion is registered), and every human feedback whose time has come.
    Humans answer a share `feedback_rate` of opinions (a number, or one per specialist; the rest
    never), after a log-normal delay (median `feedback_median_hours`, sigma `feedback_delay_sigma`:
    mostly hours, a tail of days), with the hidden policy's label and `label_noise`. `drift`: the
    `DriftInjection`s in force from their onset. `review_capacity` > 0: the reviewers spend that many labels
    a day per specialist on the open review queue first (`hive_assets.review`), in place of as many organic
    answers. Feedback not yet due waits in this object and in the store's `simulator_state` (the next loop
    on the home delivers it when due), never in `specialist_feedback`, so that collection only ever holds
    what production would hold at `now`. Deterministic per (seed, hours served): a loop
    on a home where loops of its seed served N hours starts at hour N (`hours_served`), or at the hour a
    killed loop left unfinished (`interrupted_hour`).
    """

    def __init__(self, store, tracking_uri: str, *, seed: int = 0, label_noise: float = 0.10,
                 feedback_rate: float | Mapping[str, float] = 0.85, feedback_median_hours: float = 6.0,
                 feedback_delay_sigma: float = 1.0, drift: Sequence[DriftInjection] = (),
                 review_capacity: float = 0.0, origin: datetime | None = None,
                 audit_sink: Callable[[list[dict]], object] | None = None):
        self.store, self.tracking_uri, self.seed, self.origin = store, tracking_uri, seed, origin
        self.audit_sink = audit_sink  # the intent audit events' other destination (simulate's `audit_sink`)
        self.label_noise = label_noise
        self.feedback_rates = (dict(feedback_rate) if isinstance(feedback_rate, Mapping)
                               else dict.fromkeys(SPECIALISTS, float(feedback_rate)))
        self.feedback_median_hours, self.feedback_delay_sigma = feedback_median_hours, feedback_delay_sigma
        self.drift = tuple(drift)
        # what a specialist service runs, refreshed by hand once per simulated hour (no thread)
        self.routers = routers_for(tracking_uri, refresh_interval=None)
        # a loop on a home an earlier loop of this seed played goes on after its hours: from hour 0, its
        # documents' ids (made from the hour's seed) were the earlier ones', and every hour replaced one
        # (or a loop killed inside an hour: that hour is played again; run_loop starts there)
        self.hours_served = first_hour(store, seed)
        # labels a day per specialist the reviewers spend on the review queue first (0: they ignore it)
        self.review_capacity = float(review_capacity)
        self._review_credit = dict.fromkeys(SPECIALISTS, 0.0)
        # the answers an earlier loop left not yet due (any seed: people answer what they were served)
        self.pending, credit = load_pending(store)
        self._review_credit.update({k: float(v) for k, v in credit.items() if k in self._review_credit})
        if self.pending:  # a loop killed after its hour's feedback was written, before the state was saved:
            # that state is the hour before's, and an answer of it may be written already (due, or the
            # organic answer a review answer replaced under the same id, which must not come back over it)
            ids = [f["feedback_id"] for f in self.pending]
            written = {d["feedback_id"] for d in store.find_by_keys("specialist_feedback", "feedback_id", ids,
                                                                     projection=["feedback_id"])}
            self.pending = [f for f in self.pending if f["feedback_id"] not in written]

    def serve_hour(self, now: datetime, plans: int = 100, *, complete: bool = True) -> dict[str, int]:
        """Serve the hour ending at `now` (aware UTC); returns what was written. `complete=False` leaves the
        hour unfinished until `complete_hour()` (the closed loop's: after the hour's sensor tick, so a loop
        killed inside the tick plays the hour again, its tick included)."""
        import numpy as np

        from hive_assets.simulator._simulate import _ms, _noisy, policy_label, simulate

        seed_of_hour = hour_seed(self.seed, self.hours_served)
        # before the hour's first document: a loop killed inside it is found and the hour played again
        self.store.upsert_many("simulator_state", [{"state_id": PLAYING, "seed": self.seed, "hour": self.hours_served,
                                                    "now": now}])
        self.hours_served += 1
        rng = np.random.default_rng([self.seed, self.hours_served, 7])
        refresh_all(self.routers)
        serve = served_opinions(self.routers)
        # Everything this tick serves is stamped in (now - 1h, now]: this hour's routing (a test opened, a
        # traffic step) was decided at now - 1h, and an opinion stamped before it would seem served before it.
        # make_plans ends an hour before its `now`; simulate stamps audit events up to 30 s before a plan and
        # opinions up to 94 s after it. So plans span (now - 1h + 31 s, now - 95 s] (1 s spare for the ms
        # rounding): the same draws as over a whole hour, scaled by 3474/3600, so the scenario keeps its shape.
        end = now + timedelta(hours=1) - timedelta(seconds=_OPINION_LAG_S)
        span = (3600 - _OPINION_LAG_S - _AUDIT_LEAD_S) / 86400
        batches = [(simulate(self.store, plans=plans, days=span, seed=seed_of_hour, now=end, feedback_rate=0.0,
                             malformed_rate=0.0, opinion_model=serve, keep_plans=True, audit_sink=self.audit_sink),
                    {})]
        for k, injection in enumerate(self.drift):
            if now <= injection.onset or not round(injection.share * plans):
                continue
            # a seed of its own per injection and hour: plan ids never collide with the regular stream's
            batches.append((simulate(self.store, plans=round(injection.share * plans), days=span,
                                     seed=seed_of_hour * 17 + 1_000_000_007 * (k + 1), now=end, drift=injection.shift,
                                     feedback_rate=0.0, malformed_rate=0.0, opinion_model=serve,
                                     specialists=(injection.specialist,), domain=injection.domain, keep_plans=True,
                                     audit_sink=self.audit_sink),
                            {injection.specialist: {injection.domain: injection.domain_offset}}))
        written_opinions = 0
        new_feedback = 0
        self._offsets = {i.specialist: {i.domain: i.domain_offset} for i in self.drift if now > i.onset}
        for summary, offsets in batches:
            written_opinions += summary.written["specialist_opinions"]
            by_plan = {p["plan_id"]: p for p in summary.plan_docs}
            opinions = sorted(self.store.find_by_keys("specialist_opinions", "plan_id", by_plan),
                              key=lambda o: o["opinion_id"])
            for o in opinions:
                specialist = o["specialist_type"]
                if rng.random() >= self.feedback_rates.get(specialist, 0.0):
                    continue  # this one is never answered
                delay = timedelta(hours=float(rng.lognormal(np.log(self.feedback_median_hours),
                                                            self.feedback_delay_sigma)))
                label = _noisy(policy_label(specialist, by_plan[o["plan_id"]], offsets.get(specialist)), rng,
                               self.label_noise)
                self.pending.append({
                    "feedback_id": f"fb-{o['opinion_id']}", "opinion_id": o["opinion_id"], "plan_id": o["plan_id"],
                    "specialist_type": specialist, "human_recommendation": label,
                    "human_rating": round(float(rng.uniform(0.6, 1.0)), 3),
                    "submitted_by": f"reviewer-{int(rng.integers(40))}",
                    "submitted_at": _ms(to_utc(o["evaluated_at"]) + delay), "feedback_source": "human_expert",
                    "metadata": {},
                })
                new_feedback += 1
        if self.review_capacity > 0:
            self._answer_review_queue(now, rng, first_new=len(self.pending) - new_feedback)
        due = [f for f in self.pending if f["submitted_at"] <= now]
        self.pending = [f for f in self.pending if f["submitted_at"] > now]
        written = self.store.upsert_many("specialist_feedback", due) if due else 0
        # after the due ones: a loop killed in between writes them again, the same documents
        if complete:
            self.complete_hour()
        return {"plans": sum(s.plans for s, _ in batches), "opinions": written_opinions, "feedback": written,
                "feedback_pending": len(self.pending)}

    def complete_hour(self) -> None:
        """Record the hour served last as complete (the answers still owed, the reviewers' credit): until then
        `interrupted_hour` names it, and the next loop plays it again."""
        save_pending(self.store, self.pending, self._review_credit, seed=self.seed, hours=self.hours_served,
                     origin=self.origin)

    def _answer_review_queue(self, now: datetime, rng, first_new: int) -> None:
        """Reviewers first answer open review requests, in the queue's order, within `review_capacity` a day
        (spread over the hours); each answer takes the place of one of this hour's organic answers of the same
        specialist (the same people, the same time), and of the opinion's own pending organic answer."""
        from hive_assets.review import open_queue
        from hive_assets.simulator._simulate import _ms, _noisy, policy_label

        for specialist in SPECIALISTS:
            self._review_credit[specialist] += self.review_capacity / 24.0
            take = int(self._review_credit[specialist])
            if take <= 0:
                continue
            queue = open_queue(self.store, specialist, now, limit=take)
            self._review_credit[specialist] -= len(queue)
            if not queue:
                self._review_credit[specialist] = min(self._review_credit[specialist], 1.0)  # idle time is not banked
                continue
            answered = {r["opinion_id"] for r in queue}
            displaced = [i for i in range(first_new, len(self.pending))
                         if self.pending[i]["specialist_type"] == specialist][: len(queue)]
            drop = set(displaced) | {i for i, f in enumerate(self.pending) if f["opinion_id"] in answered}
            first_new -= sum(1 for i in drop if i < first_new)
            self.pending = [f for i, f in enumerate(self.pending) if i not in drop]
            plans: dict[str, dict] = {}
            for collection in ("cognitive_ledger", "cognitive_plans"):
                for doc in self.store.find_by_keys(collection, "plan_id", {r["plan_id"] for r in queue}):
                    plans.setdefault(doc["plan_id"], doc.get("plan_data", doc))
            for request in queue:
                plan = plans.get(request["plan_id"])
                if plan is None:
                    continue
                label = _noisy(policy_label(specialist, plan, self._offsets.get(specialist)), rng, self.label_noise)
                self.pending.append({
                    "feedback_id": f"fb-{request['opinion_id']}", "opinion_id": request["opinion_id"],
                    "plan_id": request["plan_id"], "specialist_type": specialist, "human_recommendation": label,
                    "human_rating": round(float(rng.uniform(0.6, 1.0)), 3),
                    "submitted_by": f"reviewer-{int(rng.integers(40))}",
                    "submitted_at": _ms(now - timedelta(minutes=float(rng.uniform(0, 50)))),
                    "feedback_source": "human_expert", "metadata": {"review_request_id": request["request_id"]},
                })
