"""`SpecialistRouter`: the registry's decisions (champion, challenger, the A/B split) served to traffic.

Refresh runs off the request path: a daemon thread reads the registered model every `refresh_interval`
seconds (one `get_registered_model` call returns both the aliases and the split tags), loads a version
it has not loaded yet, and then swaps in one immutable `_State`. A request reads that reference once
and never waits for MLflow, a lock or a download: model loads take seconds and MLflow's own retries
minutes, which a request must not pay. Whatever fails during a refresh (MLflow unreachable, a version
that does not load, a refused feature schema) leaves the last good state serving, logs one warning
line when the failure starts and shows in `health()`.
"""

from __future__ import annotations

import logging
import math
import os
import sys
import threading
import time
import weakref
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from hive_assets.config import SPECIALISTS, absent_sqlite_database
from hive_assets.routing import CHALLENGER, CHAMPION, assign_arm
from hive_assets.serving._opinion import Opinion, routing_unit
from hive_assets.serving._split import Serving, Split, serving_from

log = logging.getLogger("hive_assets.serving")

DEFAULT_REFRESH_SECONDS = 30.0
REGISTRY_READ_PATIENCE = 10.0  # seconds a registry read may take before health() calls the registry unanswering
# A version that does not load is tried again after 1, 2, 4, 8, then every 16 refreshes (8 minutes at the
# default interval): each try downloads its artifacts, which every pod of a service did every 30 s before.
MAX_LOAD_RETRY_REFRESHES = 16


@dataclass(frozen=True)
class _Model:
    version: str
    model: Any  # hive_assets.training.SpecialistModel


@dataclass(frozen=True)
class _State:
    """What requests serve from; replaced whole by a refresh, never mutated."""

    champion: _Model | None = None
    split: Split | None = None
    challenger: _Model | None = None  # None inside a split: its arm is served by the champion, untagged


@dataclass
class _Status:
    registry_error: str | None = None
    reading_since: float | None = None    # time.monotonic() when the registry read under way began
    last_success: float | None = None     # time.monotonic() of the last refresh that read the registry
    last_success_at: str | None = None    # the same instant on the platform clock, for people
    refreshes: int = 0
    registry_serving: Serving | None = None
    failed_versions: dict[str, str] = field(default_factory=dict)
    # failed version -> (failed loads in a row, the refresh that tries it again)
    load_retry: dict[str, tuple[int, int]] = field(default_factory=dict)


class InvalidPlan(ValueError):
    """A plan the platform's collection would quarantine (SPEC section 2's shapes, the reason codes of
    `hive_assets.data.REASON_CODES`): no model was trained on one like it, so it gets no opinion. A
    service answers its caller's bad request (gRPC INVALID_ARGUMENT, HTTP 422) or falls back as it sees fit.
    `problems`: {index of the plan in the request: [(reason code, detail), ...]} (index 0 for `evaluate`)."""

    def __init__(self, problems: dict[int, list[tuple[str, str]]], names: dict[int, str]):
        self.problems = problems
        first = next(iter(problems))
        what = "; ".join(f"{code}: {detail}" for code, detail in problems[first][:3])
        name = names[first]
        where = name if len(problems) == 1 else f"{len(problems)} plans (the first: #{first}, {name})"
        super().__init__(f"{where} not evaluated: {what}"[:500])


def _plan_name(plan_id: Any) -> str:
    """How a refused plan is named: by its id, never the repr of a hostile value (one that is not text is
    named by its type: "a plan without plan_id" was said of a plan whose id was the number 5)."""
    if plan_id is None or plan_id == "":
        return "a plan without plan_id"
    if isinstance(plan_id, str):
        return f"plan {plan_id[:100]!r}"
    return f"a plan whose plan_id is not text ({type(plan_id).__name__})"


def _plans_to_serve(plans: list[Any]) -> tuple[list[Mapping[str, Any]], list[str | None]]:
    """The plans inside the request (a ledger entry's `plan_data`) and each one's unit of the A/B split (its
    intent id, `routing_unit`); InvalidPlan for any plan that collection would quarantine."""
    from hive_assets.data import NOT_A_DOCUMENT, plan_to_serve

    served, problems, names = [], {}, {}
    for i, document in enumerate(plans):
        if not isinstance(document, Mapping):  # a JSON body that is a list or a string: collection's not_a_document
            problems[i] = [(NOT_A_DOCUMENT, f"a plan is a mapping, got {type(document).__name__}")]
            names[i] = "a plan that is no mapping"
            served.append(None)
            continue
        plan, found = plan_to_serve(document)
        if found:
            problems[i] = [(p.reason, p.detail) for p in found]
            plan_id = plan.get("plan_id") if isinstance(plan, Mapping) else None
            plan_id = plan_id if isinstance(plan_id, str) else document.get("plan_id")
            names[i] = _plan_name(plan_id)
        served.append(plan)
    if problems:
        raise InvalidPlan(problems, names)
    return served, [routing_unit(document, plan) for document, plan in zip(plans, served)]


def _seconds_in_range(value: float) -> bool:
    """A number of seconds threading can wait: finite and at most TIMEOUT_MAX (an int too large for a float
    is neither)."""
    try:
        return math.isfinite(value) and abs(value) <= threading.TIMEOUT_MAX
    except OverflowError:
        return False


def _one_line(exc: BaseException) -> str:
    """The exception in one line, redacted: it goes to the service's log and its health answer."""
    from hive_assets.config import redact_secrets

    text = redact_secrets(" ".join(str(exc).split()))
    return f"{type(exc).__name__}: {text[:300]}"


def single_threaded(model):
    """`model` predicting on one thread: a loaded xgboost estimator uses every core for each call, and a
    one-row prediction then waits on its OpenMP team (on a busy 2-vCPU machine, ~10x the latency). Requests
    run in parallel threads instead. A copy, so the registry's process-wide cached model (batch drift
    checks) keeps its threads; predictions are the same to the bit (xgboost splits rows, not trees)."""
    import copy

    estimator = getattr(model, "estimator", None)
    if getattr(model, "model_type", None) != "xgboost" or estimator is None or \
            estimator.get_params().get("n_jobs") == 1:
        return model
    served = copy.copy(model)
    served.estimator = copy.deepcopy(estimator)
    served.estimator.set_params(n_jobs=1)
    return served


class SpecialistRouter:
    """Routes and scores plans for one specialist as the registry says now.

    `SpecialistRouter("business", "http://mlflow:5000")` resolves `business-evaluator@champion`, and while
    an A/B test runs the `challenger` version and the test's split (registered-model tags written by
    the rollout controller). `evaluate(plan)` routes the plan by `assign_arm(salt, intent_id, traffic)`
    (sticky: an intent stays in its arm while traffic grows), computes the features of the contract
    (`hive_assets.features`) and returns an `Opinion` with the recommendation, calibrated confidence,
    class probabilities, model version and `ab_test_id` / `ab_arm`; None while no champion could ever be
    loaded (`health()["ready"]` is then False).

    `refresh_interval` (seconds): the background refresh period; a change of alias or split is served
    at most one interval (plus the refresh's own duration, and the load time of a new version) after it
    is written. None: no thread, the caller calls `refresh()` (the simulator does, once per simulated
    hour). `wait`: seconds the constructor waits for the first refresh (0: return at once).
    `max_staleness`: age of the last successful registry read beyond which `health()` is unhealthy
    (default 3 intervals). Thread-safe: any number of threads may call `evaluate` concurrently.
    """

    def __init__(self, specialist: str, tracking_uri: str | None = None, *,
                 refresh_interval: float | None = DEFAULT_REFRESH_SECONDS, wait: float = 60.0,
                 max_staleness: float | None = None):
        if specialist not in SPECIALISTS:
            raise ValueError(f"unknown specialist {specialist!r}: one of {', '.join(SPECIALISTS)}")
        for name, value, zero in (("refresh_interval", refresh_interval, False), ("wait", wait, True),
                                  ("max_staleness", max_staleness, False)):
            # a str, a bool or infinity was taken: a TypeError later, a refresh every second, or a refresh
            # thread that died on its first sleep while health() stayed healthy (as it did beyond
            # threading.TIMEOUT_MAX, ~292 years, the longest wait Python can sleep)
            if value is None and name != "wait":
                continue
            if (isinstance(value, bool) or not isinstance(value, (int, float)) or not _seconds_in_range(value)
                    or value < 0 or (value == 0 and not zero)):
                text = repr(value)
                shown = text if len(text) <= 40 else f"{text[:20]}... ({len(text)} characters)"
                raise ValueError(f"{name} must be a finite number of seconds {'>= 0' if zero else '> 0'} (at most "
                                 f"{threading.TIMEOUT_MAX:.3g}){'' if name == 'wait' else ' or None'}, got {shown}")
        if isinstance(tracking_uri, str) and not tracking_uri.strip():
            # MLflow takes "" for its default, a new mlflow.db in the service's working directory: a service
            # whose MLFLOW_TRACKING_URI is missing served nothing and reported "no registered model"
            raise ValueError("tracking_uri is empty: pass the registry's URL (the platform's MLFLOW_TRACKING_URI), "
                             "or None for the platform's own settings")
        if tracking_uri is None:
            from hive_assets.config import registry_uri

            tracking_uri = registry_uri()  # only what a service needs: not the platform's store or storage
        self.specialist = specialist
        from hive_assets.config import redact_uri

        self._tracking_uri = tracking_uri
        self.tracking_uri = redact_uri(tracking_uri)  # for logs and repr: a service that prints it shows no password
        self.refresh_interval = refresh_interval
        self.max_staleness = max_staleness if max_staleness is not None else (
            3 * refresh_interval if refresh_interval else None)
        self._state = _State()
        self._status = _Status()
        self._refresh_lock = threading.Lock()
        self._client = None
        self._generation: Any = None           # the registered model's creation time: a recreated model's
        self._loaded: dict[tuple, _Model] = {}  # version numbers are other versions
        self._warned: set[str] = set()
        self._stop = threading.Event()
        self._first = threading.Event()
        self._thread: threading.Thread | None = None
        _ROUTERS.add(self)
        if refresh_interval is not None:
            self._start_refresh()
            if wait > 0:
                self._first.wait(wait)

    def _start_refresh(self) -> None:
        self._thread = threading.Thread(target=self._run, name=f"hive-serving-{self.specialist}", daemon=True)
        self._thread.start()

    def _after_fork_in_child(self) -> None:
        """A forked child (gunicorn --preload, uWSGI without lazy-apps, multiprocessing) has no refresh thread
        (only the forking thread survives a fork): it served the parent's state forever, still `ready`. It gets
        its own thread, lock (a refresh running at the fork left the parent's held for ever) and MLflow
        client (the parent's connections are not the child's)."""
        stopped = self._stop.is_set()
        self._refresh_lock, self._stop, self._first = threading.Lock(), threading.Event(), threading.Event()
        self._client, self._thread = None, None
        self._status.reading_since = None  # a read the parent had under way is not the child's
        self._first.set()
        if stopped:
            self._stop.set()
        elif self.refresh_interval is not None:
            self._start_refresh()

    # -- the request path -------------------------------------------------------------------------------
    def evaluate(self, plan: Mapping[str, Any]) -> Opinion | None:
        """The opinion on one plan (the single-plan feature path), or None while no champion is loaded.
        `plan`: the plan, or its `cognitive_ledger` entry (its `plan_data` is scored). InvalidPlan for a
        plan collection would quarantine (no tasks, wrong types, oversized, hostile structure...)."""
        (plan,), units = _plans_to_serve([plan])
        state = self._state
        if state.champion is None:
            return None
        import pandas as pd

        from hive_assets.features import FEATURE_NAMES, plan_features

        frame = pd.DataFrame([plan_features(plan)], columns=list(FEATURE_NAMES))
        return self._score(state, units, frame)[0]

    def evaluate_many(self, plans: Sequence[Mapping[str, Any]]) -> list[Opinion] | None:
        """Opinions on a batch (the vectorised feature path, one prediction per model), in order; None
        while no champion is loaded. InvalidPlan, naming every refused plan by its index, when any plan
        is one collection would quarantine (then none is scored); TypeError when `plans` is not a sequence of
        plans (one plan, a string, None)."""
        if isinstance(plans, (Mapping, str, bytes, bytearray)) or not isinstance(plans, Iterable):
            raise TypeError(f"evaluate_many takes a list of plans, got {type(plans).__name__}"
                            + (": evaluate(plan) scores one plan" if isinstance(plans, Mapping) else ""))
        plans, units = _plans_to_serve(list(plans))
        state = self._state
        if state.champion is None:
            return None
        if not plans:
            return []
        from hive_assets.features import features_frame

        return self._score(state, units, features_frame(plans))

    def _score(self, state: _State, units: list[str | None], frame) -> list[Opinion]:
        arms: list[str | None] = [None] * len(units)
        split = state.split
        if split is not None:
            for i, unit in enumerate(units):
                # a plan without an intent has no unit to route: champion, outside the test
                arms[i] = assign_arm(split.salt, unit, split.traffic_percent) if unit else None
        to_challenger = [i for i, a in enumerate(arms) if a == CHALLENGER]
        out: list[Opinion | None] = [None] * len(units)
        if to_challenger and state.challenger is not None:
            for i, opinion in zip(to_challenger, self._predict(state.challenger, frame.iloc[to_challenger],
                                                               split, CHALLENGER)):
                out[i] = opinion
        rest = [i for i in range(len(units)) if out[i] is None]
        if rest:
            # units routed to a challenger that is not loaded are served by the champion without the
            # test's tags: they are not a champion-arm observation (their bucket says challenger)
            tagged = {i: (split if arms[i] == CHAMPION else None) for i in rest}
            opinions = self._predict(state.champion, frame.iloc[rest] if len(rest) < len(units) else frame,
                                     None, CHAMPION)
            for i, opinion in zip(rest, opinions):
                s = tagged[i]
                out[i] = opinion if s is None else Opinion(
                    opinion.specialist, opinion.recommendation, opinion.confidence, opinion.probabilities,
                    opinion.model_version, s.test_id, CHAMPION)
        return out  # type: ignore[return-value]

    def _predict(self, served: _Model, frame, split: Split | None, arm: str) -> list[Opinion]:
        proba = served.model.predict_proba(frame)
        classes = served.model.classes_
        test_id, ab_arm = (split.test_id, arm) if split is not None else (None, None)
        return [Opinion(self.specialist, str(classes[int(p.argmax())]), float(p.max()),
                        {str(c): float(x) for c, x in zip(classes, p)}, served.version, test_id, ab_arm)
                for p in proba]

    # -- refresh ----------------------------------------------------------------------------------------
    def _run(self) -> None:
        delay = 0.0
        while not self._stop.wait(delay):
            try:
                self.refresh()
            except Exception as exc:  # a bug in refresh must not end the thread: log it, keep serving
                import traceback

                from hive_assets.config import redact_secrets

                # the traceback redacted (log.exception's would print the exception's text as it is)
                log.error("%s: refresh failed unexpectedly: %s\n%s", self.specialist, _one_line(exc),
                          redact_secrets("".join(traceback.format_exception(exc)).rstrip()))
            self._first.set()
            delay = self.refresh_interval or DEFAULT_REFRESH_SECONDS

    def refresh(self) -> dict[str, Any]:
        """Read the registry now and serve what it says (loading new versions); returns `health()`.
        Never raises for MLflow or a model: failures keep the last good state."""
        with self._refresh_lock:
            self._refresh()
        return self.health()

    def _refresh(self) -> None:
        from hive_assets import registry

        status = self._status
        absent = absent_sqlite_database(self._tracking_uri)
        try:
            if absent is not None:  # opening it would create it: a typo served nothing, "reachable", for ever
                model = None
            else:
                status.reading_since = time.monotonic()
                if self._client is None:
                    self._client = registry.client_for(self._tracking_uri)
                model = self._registered_model()
                status.reading_since = None
        except Exception as exc:
            status.reading_since = None  # unreachable, refused, misconfigured: the last good state serves
            refused = registry.http_refusal(exc)  # it answers, but not to these credentials or at this path
            status.registry_error = f"refused: {refused}" if refused else _one_line(exc)
            what = "refused the request" if refused else "unreachable"
            self._warn_once("registry", f"{self.specialist}: model registry {what} "
                                        f"({refused or status.registry_error}); serving {self._describe(self._state)}")
            return
        if "registry" in self._warned:
            self._warned.discard("registry")
            log.warning("%s: model registry reachable again", self.specialist)
        status.registry_error = None
        generation = getattr(model, "creation_timestamp", None) if model is not None else None
        recreated = generation != self._generation
        if recreated:
            self._loaded.clear()  # a deleted and recreated registered model reuses version numbers
            status.load_retry = {}  # and its failed loads were other versions'
            self._generation = generation
        previous = self._state
        serving = serving_from(dict(model.aliases) if model is not None else {},
                               dict(model.tags) if model is not None else {},
                               last=None if recreated else previous.split)  # a recreated model's are others
        if model is None:
            serving = Serving(None, None, f"no MLflow database at {absent} (no model was registered there; a "
                                          "serving client never creates one)" if absent is not None else
                              f"no registered model {registry.model_name(self.specialist)}")
        champion = previous.champion
        if serving.champion_version is not None:
            if "no-champion" in self._warned:
                self._warned.discard("no-champion")
                log.warning("%s: alias %s set again (v%s)", self.specialist, CHAMPION, serving.champion_version)
            champion = self._load(serving.champion_version) or previous.champion
        elif previous.champion is not None:
            self._warn_once("no-champion", f"{self.specialist}: alias {CHAMPION} is not set; serving last good "
                                           f"v{previous.champion.version}")
        split = serving.split
        if serving.unreadable:  # the test's tags say it runs but cannot be read: the last good split, when
            # serving_from kept it (the same test, its challenger alias in place) and the champion is the same
            self._warn_once("split", f"{self.specialist}: A/B split {serving.unreadable}; serving "
                                     f"{self._describe(previous)}")
            same_champion = champion is not None and previous.champion is not None and \
                champion.version == previous.champion.version
            split = split if same_champion else None
        elif "split" in self._warned:
            self._warned.discard("split")
            log.warning("%s: A/B split readable again", self.specialist)
        if split is not None and champion is not None and serving.champion_version is not None \
                and champion.version != serving.champion_version:
            # the test compares the registry's champion with its challenger: a unit this pod serves with
            # another version (the new champion does not load here) belongs to neither arm, so no unit is
            # tagged (the challenger's arm too: its units then get the champion, untagged) until it loads
            self._warn_once("split-champion", f"{self.specialist}: A/B test {split.test_id} not served: its "
                                              f"champion v{serving.champion_version} is not loaded here; serving "
                                              f"v{champion.version} to every unit, untagged")
            split = None
        elif "split-champion" in self._warned and champion is not None:
            self._warned.discard("split-champion")
            log.warning("%s: champion v%s loaded: A/B tests are served again", self.specialist, champion.version)
        challenger = None
        if split is not None:
            # an unreadable share keeps the last split (serving_from: the same test, never a recreated model's)
            challenger = (previous.challenger if serving.unreadable else None) or self._load(split.challenger_version)
        state = _State(champion, split if champion is not None else None, challenger)
        # a version that failed to load and that the registry no longer names is no longer a fault
        named = {serving.champion_version, split.challenger_version if split else None} - {None}
        if set(status.failed_versions) - named:
            status.failed_versions = {v: e for v, e in status.failed_versions.items() if v in named}
            status.load_retry = {v: r for v, r in status.load_retry.items() if v in named}
            still_named = {f"load:{(self._generation, v)}" for v in named}
            self._warned = {w for w in self._warned if not w.startswith("load:") or w in still_named}
        keep = {m.version for m in (state.champion, state.challenger) if m is not None}
        self._loaded = {k: m for k, m in self._loaded.items() if m.version in keep}
        # and from the process's cache of loaded versions: each promotion left one more model in memory
        if self._client is not None:
            registry.release_version_models(self._client.tracking_uri, registry.model_name(self.specialist), keep)
        self._state = state
        from hive_assets import clock

        status.last_success, status.last_success_at = time.monotonic(), clock.now().isoformat()
        status.refreshes += 1
        status.registry_serving = serving

    def _registered_model(self):
        """The registered model (aliases + tags), or None when it does not exist yet (for this account)."""
        from hive_assets import registry

        return registry.registered_model(self._client, self.specialist)

    def _load(self, version: str) -> _Model | None:
        """The model of `version` (loaded once), or None when it does not load: any error of the loader,
        including a refused feature schema or an artifact that fails verification."""
        key = (self._generation, str(version))
        if key in self._loaded:
            return self._loaded[key]
        status = self._status
        failures, retry_at = status.load_retry.get(str(version), (0, 0))
        if status.refreshes < retry_at:
            return None  # failed lately: not downloaded again before its retry (failed_versions says why)
        from hive_assets import registry
        from hive_assets.features import FEATURE_SCHEMA_VERSION
        from hive_assets.training import SchemaMismatch, check_schema

        name = registry.model_name(self.specialist)
        try:
            mv = self._client.get_model_version(name, str(version))
            tagged = (mv.tags or {}).get("feature_schema_version")
            if tagged is not None and tagged != FEATURE_SCHEMA_VERSION:
                # refused before downloading anything (SPEC section 3); the loaded model is checked too
                raise SchemaMismatch(f"{name} v{version} was trained on feature schema {tagged}, this code "
                                     f"computes {FEATURE_SCHEMA_VERSION}")
            model = registry.load_version_model(self._client, mv)
            check_schema(model.feature_names_in_, model.feature_schema_version, f"{name} v{version}")
            model = single_threaded(model)
        except Exception as exc:
            error = _one_line(exc)
            # files that were not handed over (the artifact store down, a download cut) are tried again at the
            # next refresh: backing off delayed a promotion, or the rollback of a bad model, by up to 8 minutes
            # after a blip; files that do not load or verify back off (each try downloads them again)
            failures = 0 if getattr(exc, "downloading", False) else failures + 1
            # copy-on-write: health() reads these dicts from other threads without a lock
            status.failed_versions = {**status.failed_versions, str(version): error}
            status.load_retry = {**status.load_retry, str(version): (
                failures, status.refreshes + min(2 ** max(failures - 1, 0), MAX_LOAD_RETRY_REFRESHES))}
            self._warn_once(f"load:{key}", f"{self.specialist}: v{version} does not load ({error}); serving "
                                           f"{self._describe(self._state)}")
            return None
        if str(version) in status.failed_versions:
            status.failed_versions = {v: e for v, e in status.failed_versions.items() if v != str(version)}
            status.load_retry = {v: r for v, r in status.load_retry.items() if v != str(version)}
            self._warned.discard(f"load:{key}")
            log.warning("%s: v%s loads now", self.specialist, version)
        loaded = _Model(str(version), model)
        self._loaded[key] = loaded
        return loaded

    def _warn_once(self, key: str, message: str) -> None:
        if key not in self._warned:
            self._warned.add(key)
            log.warning(message)

    @staticmethod
    def _describe(state: _State) -> str:
        if state.champion is None:
            return "nothing (no champion loaded yet)"
        text = f"champion v{state.champion.version}"
        if state.split is not None and state.challenger is not None:
            text += f", challenger v{state.challenger.version} at {state.split.traffic_percent:g} %"
        return text

    # -- health and lifecycle ---------------------------------------------------------------------------
    def health(self) -> dict[str, Any]:
        """What this router serves and whether it is current, for a readiness/health endpoint.

        `ready`: a champion is loaded. `healthy`: ready, the last registry read succeeded and is not older
        than `max_staleness`, every version the registry names loaded, and the champion served is the one
        the registry names (`registry_champion_version`): with the alias removed or its version deleted (by
        hand, in the MLflow UI) the last good one serves, but a new pod would have nothing to serve."""
        state, status = self._state, self._status
        now = time.monotonic()
        age = None if status.last_success is None else now - status.last_success
        # a registry that accepts the connection and never answers holds the read until MLflow's timeout
        # (minutes with its retries): past REGISTRY_READ_PATIENCE it is as good as unreachable
        since = status.reading_since
        waiting = since is not None and now - since > REGISTRY_READ_PATIENCE
        registry_error = f"no answer for {now - since:.0f} s" if waiting else status.registry_error
        stale = age is None or (self.max_staleness is not None and age > self.max_staleness)
        serving = status.registry_serving
        failed = dict(status.failed_versions)
        retry = dict(status.load_retry)
        named = serving.champion_version if serving else None  # the registry's champion at the last read
        current = state.champion is not None and named == state.champion.version
        return {
            "specialist": self.specialist,
            "ready": state.champion is not None,
            "healthy": (current and registry_error is None and not stale and not failed
                        and not (serving and serving.unreadable)),
            "registry_reachable": registry_error is None and status.last_success is not None,
            "registry_error": registry_error,
            "seconds_since_refresh": None if age is None else round(age, 3),
            "last_refresh_at": status.last_success_at,
            "refresh_interval": self.refresh_interval,
            "champion_version": state.champion.version if state.champion else None,
            "registry_champion_version": named,
            "challenger_version": state.challenger.version if state.challenger and state.split else None,
            "ab_test_id": state.split.test_id if state.split else None,
            "ab_challenger_traffic_percent": state.split.traffic_percent if state.split else 0.0,
            "ab_routing": bool(state.split and state.challenger),
            "ab_reason": serving.reason if serving else None,
            "ab_split_error": serving.unreadable if serving else None,
            "failed_versions": failed,
            # refreshes until each failed version is downloaded and tried again (1: at the next refresh)
            "failed_versions_retry_in": {v: max(retry.get(v, (0, 0))[1] - status.refreshes + 1, 1) for v in failed},
            "refreshes": status.refreshes,  # registry reads that succeeded since the router started
        }

    def close(self, timeout: float = 10.0) -> None:
        """Stop the refresh thread (the models stay served)."""
        self._stop.set()
        if self._thread is not None and self._thread is not threading.current_thread():
            self._thread.join(timeout)

    def __enter__(self) -> "SpecialistRouter":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"SpecialistRouter({self.specialist!r}, serving {self._describe(self._state)})"


_ROUTERS: "weakref.WeakSet[SpecialistRouter]" = weakref.WeakSet()


def _after_fork_in_child() -> None:
    # MLflow's cached HTTP sessions hold the parent's connections: the child opens its own. Only when the parent
    # had imported MLflow: this runs in every forked child of the process, and importing it takes a second
    request_utils = sys.modules.get("mlflow.utils.request_utils")
    if request_utils is not None and hasattr(request_utils, "_cached_get_request_session"):
        request_utils._cached_get_request_session.cache_clear()
    for router in list(_ROUTERS):
        router._after_fork_in_child()


if hasattr(os, "register_at_fork"):  # POSIX
    os.register_at_fork(after_in_child=_after_fork_in_child)


def routers_for(tracking_uri: str | None = None, specialists: Iterable[str] = SPECIALISTS,
            **kwargs: Any) -> dict[str, SpecialistRouter]:
    """One router per specialist (the simulator's five; a pod needs one)."""
    return {s: SpecialistRouter(s, tracking_uri, **kwargs) for s in specialists}
