"""Partition detector decisions: node health, incident episodes and counter growth, on simulated time."""

from __future__ import annotations

from dataclasses import asdict
from typing import Any

import pytest

from cassandra_recovery.logic.detector import (
    ClusterDetector,
    DetectorConfig,
    IncidentKind,
    IncidentTrigger,
    NodeHealth,
    NodeSnapshot,
    Observation,
    Transition,
)
from cassandra_recovery.logic.detector_counters import (
    CounterGrowth,
    DroppedSample,
    HintSample,
    HintSeverity,
    RunningCounter,
    dropped_growth,
    hint_levels,
    hint_samples,
)
from cassandra_recovery.logic.probe_result import ProbeResult
from cassandra_recovery.parsers.sjk import HintCounters
from tests import faults as F

pytestmark = pytest.mark.area("detection")

H, S, C, R = NodeHealth.HEALTHY, NodeHealth.SUSPECTED, NodeHealth.CONFIRMED, NodeHealth.RECOVERING
LETTER = {"H": H, "S": S, "C": C, "R": R}
NODES = ("n1", "n2", "n3")
T0 = 1000.0
TIMEOUT = "TimeoutError: timed out"


def obs(code: str, node: str = "n1", at: float = T0) -> Observation:
    """One observation of `node`, its two peers reporting:
    O clean probe, F failed probe, L slow probe (answered), P answered but both peers see it DOWN,
    p answered but one of two peers sees it DOWN, X failed and both peers see it DOWN."""
    probe_ok = code in "OLPp"
    latency = {"O": 12.0, "L": 301.0, "P": 8.0, "p": 9.0}.get(code)
    down = {"P": 2, "p": 1, "X": 2}.get(code, 0)
    return Observation(node, at, probe_ok, latency, None if probe_ok else TIMEOUT, down, 2)


def run(det: ClusterDetector, codes: str, node: str = "n1", start: float = T0, step: float = 1.0) -> str:
    """Feed the codes one second apart; the node's state after each, as letters."""
    out = ""
    for i, code in enumerate(codes):
        det.observe(obs(code, node, start + i * step))
        out += det.states()[node].name[0]
    return out


def detector(**config: Any) -> ClusterDetector:
    return ClusterDetector(DetectorConfig(**config), NODES)


# --- the per-node state machine ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("codes", "states"),
    [
        pytest.param("O", "H", id="clean-stays-healthy"),
        pytest.param("F", "S", id="one-failure-suspects"),
        pytest.param("L", "S", id="one-slow-probe-suspects"),
        pytest.param("p", "S", id="one-peer-seeing-down-suspects"),
        pytest.param("FF", "SS", id="2-failures-stay-suspected"),
        pytest.param("FFF", "SSC", id="frozen-node-confirmed-after-exactly-3"),
        pytest.param("FFO", "SSH", id="blip-of-2-recovers"),
        pytest.param("FFOFF", "SSHSS", id="a-clean-probe-resets-the-count"),
        pytest.param("FFLF", "SSSS", id="a-slow-answer-breaks-the-run"),
        pytest.param("L" * 10, "S" * 10, id="slow-probes-never-confirm"),
        pytest.param("LO", "SH", id="slow-then-clean-recovers"),
        pytest.param("p" * 6, "S" * 6, id="a-peer-minority-never-confirms"),
        pytest.param("pO", "SH", id="peer-minority-then-clean"),
        pytest.param("PP", "SS", id="2-peer-majority-observations"),
        pytest.param("PPP", "SSC", id="peer-majority-3-times-confirms"),
        pytest.param("PPO", "SSH", id="peers-see-it-up-again"),
        pytest.param("FPF", "SSS", id="probe-and-peer-runs-are-separate"),
        pytest.param("XXX", "SSC", id="failed-and-peers-agree"),
        pytest.param("FFFF", "SSCC", id="stays-confirmed"),
        pytest.param("FFFO", "SSCR", id="first-clean-probe-starts-recovery"),
        pytest.param("FFFL", "SSCC", id="a-slow-answer-does-not-start-recovery"),
        pytest.param("FFFp", "SSCC", id="a-peer-seeing-down-does-not-start-recovery"),
        pytest.param("PPPO", "SSCR", id="peer-confirmed-recovers-when-peers-see-it-up"),
        pytest.param("FFF" + "O" * 5, "SSC" + "R" * 5, id="4-clean-while-recovering-not-enough"),
        pytest.param("FFF" + "O" * 6, "SSC" + "R" * 5 + "H", id="5-clean-while-recovering-heal"),
        pytest.param("FFFOOOOF", "SSCRRRRC", id="flap-on-one-failure"),
        pytest.param("FFFOOL" + "O" * 4, "SSCRRR" + "RRRR", id="slow-resets-the-clean-run"),
        pytest.param("FFFOOL" + "O" * 5, "SSCRRR" + "RRRRH", id="5-clean-after-the-reset-heal"),
        pytest.param("FFFOOp" + "O" * 4, "SSCRRR" + "RRRR", id="peer-doubt-resets-the-clean-run"),
        pytest.param("FFFOPP", "SSCRRR", id="2-peer-majorities-while-recovering"),
        pytest.param("FFFOPPP", "SSCRRRC", id="3-peer-majorities-while-recovering-confirm"),
        pytest.param("FFF" + "O" * 6 + "F", "SSC" + "R" * 5 + "HS", id="healed-then-fails-again"),
    ],
)
def test_state_machine(codes: str, states: str) -> None:
    assert run(detector(), codes) == states


@pytest.mark.parametrize(
    ("latency_ms", "state"),
    [(299.9, H), (300.0, H), (300.1, S), (499.0, S), (None, H)],
)
def test_latency_threshold_is_strictly_above(latency_ms: float | None, state: NodeHealth) -> None:
    det = detector()
    det.observe(Observation("n1", T0, True, latency_ms, None))
    assert det.states()["n1"] is state


@pytest.mark.parametrize(
    ("down", "total", "state"),
    [
        (0, 0, H),  # nobody asked: no peer evidence either way
        (1, 1, C),
        (1, 2, S),  # half is not a majority
        (2, 2, C),
        (1, 3, S),
        (2, 3, C),
        (2, 4, S),
        (3, 4, C),
    ],
)
def test_peer_majority(down: int, total: int, state: NodeHealth) -> None:
    det = detector()
    for i in range(3):
        det.observe(Observation("n1", T0 + i, True, 5.0, None, down, total))
    assert det.states()["n1"] is state


@pytest.mark.parametrize(("confirm", "failures", "state"), [(1, 1, C), (2, 1, S), (2, 2, C), (5, 4, S), (5, 5, C)])
def test_custom_confirm_failures(confirm: int, failures: int, state: NodeHealth) -> None:
    assert run(detector(confirm_failures=confirm), "F" * failures)[-1] == state.name[0]


@pytest.mark.parametrize(("recover", "clean", "state"), [(1, 1, H), (2, 1, R), (2, 2, H), (8, 7, R), (8, 8, H)])
def test_custom_recover_clean_probes(recover: int, clean: int, state: NodeHealth) -> None:
    assert run(detector(recover_clean_probes=recover), "FFFO" + "O" * clean)[-1] == state.name[0]


def test_transitions_carry_reasons() -> None:
    det = detector()
    assert det.observe(obs("O")) == []
    assert det.observe(obs("F", at=T0 + 1)) == [Transition("n1", H, S, T0 + 1, f"probe failed: {TIMEOUT}")]
    assert det.observe(obs("F", at=T0 + 2)) == []
    assert det.observe(obs("F", at=T0 + 3)) == [
        Transition("n1", S, C, T0 + 3, f"3 consecutive failed probes (last: {TIMEOUT})")
    ]
    [recovering] = det.observe(obs("O", at=T0 + 4))
    assert (recovering.old, recovering.new, recovering.reason) == (C, R, "first clean probe (12 ms) since confirmed")
    [flap] = det.observe(obs("F", at=T0 + 5))
    assert (flap.old, flap.new) == (R, C) and "flap" in flap.reason


def test_symptom_reasons_name_every_symptom() -> None:
    det = detector()
    [t] = det.observe(Observation("n1", T0, True, 420.0, None, 1, 2))
    assert t.reason == "slow probe: 420 ms > 300 ms; 1 of 2 peers see it DOWN"


def test_peer_only_evidence_confirms_with_a_reason_saying_peers() -> None:
    det = detector()
    transitions = [t for i in range(3) for t in det.observe(obs("P", at=T0 + i))]
    assert [(t.old, t.new) for t in transitions] == [(H, S), (S, C)]
    reason = transitions[-1].reason
    assert reason.startswith("peers: 2 of 2 see it DOWN for 3 consecutive observations")
    assert "partition symptom" in reason and "failed probes" not in reason
    trigger = det.should_open_incident(T0 + 3)
    assert trigger is not None and trigger.reasons == (reason,)


def test_failed_probes_and_peers_together_give_both_reasons() -> None:
    det = detector()
    run(det, "XX")
    [t] = det.observe(obs("X", at=T0 + 2))
    assert "3 consecutive failed probes" in t.reason and "peers: 2 of 2" in t.reason
    assert "partition symptom" not in t.reason  # the client cannot reach it either: plain down


def test_confirm_failures_of_one_goes_through_suspected_in_one_observation() -> None:
    det = detector(confirm_failures=1)
    assert [(t.old, t.new) for t in det.observe(obs("F"))] == [(H, S), (S, C)]


def test_stale_observations_are_ignored_and_unknown_nodes_rejected() -> None:
    det = detector()
    run(det, "FF", start=T0 + 10)
    assert det.observe(obs("O", at=T0)) == []  # an old probe reporting late
    assert det.states()["n1"] is S and det.snapshot().nodes["n1"].consecutive_failures == 2
    assert det.observe(obs("F", at=T0 + 11))[0].new is C  # the same `at` as the latest is fine
    with pytest.raises(ValueError, match="unknown node 'n9'"):
        det.observe(obs("O", node="n9"))


def test_observation_from_probe_and_validation() -> None:
    probe = ProbeResult("127.0.0.4", False, None, TIMEOUT)
    assert Observation.from_probe(probe, T0, peers_seeing_down=1, peers_total=2) == Observation(
        "127.0.0.4", T0, False, None, TIMEOUT, 1, 2
    )
    assert Observation.from_probe(ProbeResult("127.0.0.4", True, 3.0), T0, node="node3").node == "node3"
    for down, total in [(3, 2), (-1, 2), (0, -1)]:
        with pytest.raises(ValueError, match="peers_seeing_down"):
            Observation("n1", T0, True, 1.0, None, down, total)


def test_detector_needs_distinct_nodes() -> None:
    for nodes in [(), ("n1", "n1")]:
        with pytest.raises(ValueError, match="at least one node"):
            ClusterDetector(None, nodes)
    assert ClusterDetector(None, ["n1"]).config == DetectorConfig()


# --- incident episodes ---------------------------------------------------------------------------------------------


class Sim:
    """Probes every node once a simulated second and asks for a trigger after each round."""

    def __init__(self, det: ClusterDetector, now: float = T0) -> None:
        self.det, self.now = det, now
        self.triggers: list[IncidentTrigger] = []

    def second(self, **codes: str) -> None:
        for node in NODES:
            self.det.observe(obs(codes.get(node, "O"), node, self.now))
        if (trigger := self.det.should_open_incident(self.now)) is not None:
            self.triggers.append(trigger)
        self.now += 1.0

    def seconds(self, n: int, **codes: str) -> None:
        for _ in range(n):
            self.second(**codes)


@pytest.mark.fault(F.NODE_BLIP)
def test_a_blip_below_confirm_failures_opens_nothing() -> None:
    sim = Sim(detector())
    sim.seconds(2, n1="F")
    sim.seconds(10)
    assert sim.triggers == [] and set(sim.det.states().values()) == {H}


@pytest.mark.fault(F.NODE_FROZEN)
def test_a_frozen_node_opens_one_incident_after_exactly_3_failed_probes() -> None:
    sim = Sim(detector())
    sim.seconds(2, n1="F")
    assert sim.triggers == []
    sim.second(n1="F")
    assert sim.triggers == [
        IncidentTrigger(
            IncidentKind.OPEN, ("n1",), (f"3 consecutive failed probes (last: {TIMEOUT})",), T0 + 2, ("n1",)
        )
    ]
    sim.seconds(30, n1="F")
    assert len(sim.triggers) == 1


@pytest.mark.fault(F.NODE_FLAPPING)
def test_flapping_for_60_seconds_opens_exactly_one_incident() -> None:
    sim = Sim(detector())
    flaps = 0
    while sim.now < T0 + 60:
        sim.seconds(4, n1="F")  # frozen
        sim.seconds(3, n1="O")  # thawed, for less than recover_clean_probes
        flaps += 1
    assert flaps >= 8 and sim.det.snapshot().nodes["n1"].flaps == flaps - 1
    assert [(t.kind, t.nodes) for t in sim.triggers] == [("open", ("n1",))]


@pytest.mark.fault(F.NODE_FLAPPING)
def test_flapping_through_healthy_within_the_cooldown_stays_one_episode() -> None:
    sim = Sim(detector())
    for _ in range(5):
        sim.seconds(3, n1="F")
        sim.seconds(10, n1="O")  # long enough to be HEALTHY again, far shorter than the cooldown
    assert [t.kind for t in sim.triggers] == ["open"]


def test_a_second_node_joins_the_open_episode_once() -> None:
    sim = Sim(detector())
    sim.seconds(3, n1="F")
    sim.seconds(5, n1="F", n2="F")
    sim.seconds(20, n1="F", n2="P")  # n2 cut off from its peers
    assert [(t.kind, t.nodes, t.episode_nodes) for t in sim.triggers] == [
        (IncidentKind.OPEN, ("n1",), ("n1",)),
        (IncidentKind.JOIN, ("n2",), ("n1", "n2")),
    ]


def test_nodes_confirmed_together_share_one_trigger() -> None:
    sim = Sim(detector())
    sim.seconds(3, n1="F", n3="P")
    [trigger] = sim.triggers
    assert trigger.nodes == ("n1", "n3") and "failed probes" in trigger.reasons[0] and "peers" in trigger.reasons[1]


def heal(sim: Sim) -> float:
    """n1 fails, is confirmed, recovers; returns when the whole cluster became HEALTHY."""
    sim.seconds(3, n1="F")
    sim.seconds(6)
    healthy_since = sim.det.snapshot().all_healthy_since
    assert healthy_since == sim.now - 1 and set(sim.det.states().values()) == {H}
    return healthy_since


def test_a_failure_after_the_cooldown_opens_a_new_incident() -> None:
    sim = Sim(detector())
    healthy_since = heal(sim)
    sim.seconds(int(healthy_since + 300 - sim.now))  # the cooldown elapses exactly at the next second
    assert sim.det.snapshot().episode_open is True
    sim.seconds(3, n2="F")
    assert [(t.kind, t.nodes) for t in sim.triggers] == [("open", ("n1",)), ("open", ("n2",))]
    assert sim.triggers[1].episode_nodes == ("n2",)


@pytest.mark.parametrize(
    ("quiet_s", "kinds"), [(298, ["open", "join"]), (299, ["open", "join"]), (300, ["open", "open"])]
)
def test_cooldown_boundary(quiet_s: int, kinds: list[str]) -> None:
    """The cluster stays HEALTHY `quiet_s` seconds before n2 fails (its first failure at healthy_since + quiet_s)."""
    sim = Sim(detector())
    healthy_since = heal(sim)
    sim.seconds(int(healthy_since + quiet_s - sim.now))
    sim.seconds(3, n2="F")
    assert [t.kind for t in sim.triggers] == kinds


def test_the_same_node_failing_again_within_the_cooldown_is_the_same_episode() -> None:
    sim = Sim(detector())
    heal(sim)
    sim.seconds(200)
    sim.seconds(3, n1="F")
    assert [t.kind for t in sim.triggers] == ["open"]


def test_mark_incident_closed_ends_the_episode() -> None:
    sim = Sim(detector())
    sim.seconds(3, n1="F")
    sim.det.mark_incident_closed(sim.now)
    assert sim.det.snapshot().episode_open is False
    sim.seconds(10, n1="F")  # still down: closing acknowledged it, nothing new
    sim.second(n1="O")
    sim.second(n1="F")  # confirmed anew (a flap) after the close
    sim.second(n2="F")
    sim.seconds(2, n2="F")
    assert [(t.kind, t.nodes) for t in sim.triggers] == [("open", ("n1",)), ("open", ("n1",)), ("join", ("n2",))]
    assert sim.triggers[2].episode_nodes == ("n1", "n2")


def test_a_confirmation_is_reported_even_if_the_node_recovered_before_the_caller_asked() -> None:
    det = detector()
    run(det, "FFFO" + "O" * 5)
    assert det.states()["n1"] is H and det.snapshot().pending_nodes == ("n1",)
    trigger = det.should_open_incident(T0 + 20)
    assert trigger is not None and trigger.kind is IncidentKind.OPEN and trigger.nodes == ("n1",)
    assert det.should_open_incident(T0 + 21) is None


# --- hints and dropped mutations ------------------------------------------------------------------------------------

NODE3 = "127.0.0.4:7000"


def series(coordinator: str, target: str, *points: tuple[int, int]) -> list[HintSample]:
    """(created_total, not_stored_total) one second apart."""
    return [HintSample(coordinator, target, c, n, T0 + i) for i, (c, n) in enumerate(points)]


@pytest.mark.parametrize(
    ("growth", "level"),
    [
        (0, HintSeverity.OK),
        (999, HintSeverity.OK),
        (1000, HintSeverity.ALERT),
        (1001, HintSeverity.ALERT),
        (9999, HintSeverity.ALERT),
        (10_000, HintSeverity.CRITICAL),
        (50_000, HintSeverity.CRITICAL),
    ],
)
def test_hint_levels_at_the_thresholds(growth: int, level: HintSeverity) -> None:
    samples = series("127.0.0.2", NODE3, (7604, 0), (7604 + growth, 0))
    [result] = hint_levels({("127.0.0.2", NODE3): samples}, DetectorConfig()).values()
    assert (result.target, result.created_growth, result.level) == (NODE3, growth, level)
    assert result.coordinator_restarted is False and result.not_stored_grew is False


def test_hint_growth_sums_over_coordinators_per_target() -> None:
    levels = hint_levels(
        {
            ("127.0.0.2", NODE3): series("127.0.0.2", NODE3, (100, 0), (700, 0)),
            ("127.0.0.3", NODE3): series("127.0.0.3", NODE3, (0, 0), (400, 3)),
            ("127.0.0.3", "127.0.0.2:7000"): series("127.0.0.3", "127.0.0.2:7000", (5, 0), (5, 0)),
        },
        DetectorConfig(),
    )
    node3 = levels[NODE3]
    assert (node3.created_growth, node3.level, node3.coordinators) == (
        1000,
        HintSeverity.ALERT,
        ("127.0.0.2", "127.0.0.3"),
    )
    assert (node3.not_stored_growth, node3.not_stored_grew) == (3, True)
    assert levels["127.0.0.2:7000"].created_growth == 0 and levels["127.0.0.2:7000"].level is HintSeverity.OK


@pytest.mark.fault(F.COORDINATOR_RESTARTED)
def test_a_counter_going_down_means_the_coordinator_restarted() -> None:
    samples = series("127.0.0.2", NODE3, (500, 2), (800, 2), (100, 0), (300, 1))
    [result] = hint_levels({("127.0.0.2", NODE3): samples}, DetectorConfig()).values()
    # 300 before the restart, then 100 and 200 counted from 0 again
    assert (result.created_growth, result.not_stored_growth) == (600, 1)
    assert result.coordinator_restarted is True and result.restarted_coordinators == ("127.0.0.2",)


def test_hint_samples_are_ordered_by_time_and_must_match_their_pair() -> None:
    samples = series("127.0.0.2", NODE3, (100, 0), (1100, 0))
    levels = hint_levels({("127.0.0.2", NODE3): list(reversed(samples))}, DetectorConfig())
    assert levels[NODE3].created_growth == 1000 and levels[NODE3].coordinator_restarted is False
    with pytest.raises(ValueError, match="filed under"):
        hint_levels({("127.0.0.3", NODE3): samples}, DetectorConfig())
    with pytest.raises(ValueError, match="negative"):
        HintSample("127.0.0.2", NODE3, -1, 0, T0)


def counters(created: dict[str, int], not_stored: dict[str, int] | None = None) -> HintCounters:
    return HintCounters(sum(created.values()), created, not_stored or {}, 0, 0, 0, 0)


def test_hint_samples_from_counters_give_lazily_registered_targets_a_zero_baseline() -> None:
    every_node = ["127.0.0.2:7000", "127.0.0.3:7000", NODE3]
    before = hint_samples("127.0.0.2", counters({}), T0, every_node)
    assert before == [
        HintSample("127.0.0.2", "127.0.0.3:7000", 0, 0, T0),  # not the coordinator itself
        HintSample("127.0.0.2", NODE3, 0, 0, T0),
    ]
    det = ClusterDetector(None, ["127.0.0.2", "127.0.0.3", "127.0.0.4"])
    det.observe_hints(before)
    levels = det.observe_hints(hint_samples("127.0.0.2", counters({NODE3: 7604}, {NODE3: 2}), T0 + 5, every_node))
    assert (levels[NODE3].created_growth, levels[NODE3].level, levels[NODE3].not_stored_grew) == (
        7604,
        HintSeverity.ALERT,
        True,
    )


def test_detector_hint_growth_counts_from_the_end_of_the_previous_episode() -> None:
    sim = Sim(detector())
    sim.det.observe_hints(series("n2", "n1:7000", (0, 0)))
    sim.seconds(3, n1="F")
    sim.det.observe_hints([HintSample("n2", "n1:7000", 1500, 0, sim.now)])
    assert sim.det.snapshot().hints["n1:7000"].level is HintSeverity.ALERT
    sim.det.observe_hints([HintSample("n2", "n1:7000", 1200, 0, sim.now - 5)])  # late: ignored
    assert sim.det.snapshot().hints["n1:7000"].created_growth == 1500
    sim.seconds(6)
    sim.seconds(300)  # healthy for the cooldown: the episode ends and growth starts over from the last sample
    assert sim.det.snapshot().episode_open is False
    levels = sim.det.observe_hints([HintSample("n2", "n1:7000", 1600, 0, sim.now)])
    assert (levels["n1:7000"].created_growth, levels["n1:7000"].level) == (100, HintSeverity.OK)


@pytest.mark.fault(F.COORDINATOR_RESTARTED)
def test_dropped_mutations_growth_is_restart_aware() -> None:
    samples = [DroppedSample("n3", v, T0 + i) for i, v in enumerate([600, 650, 10, 40])]
    assert dropped_growth({"n3": samples, "n1": [DroppedSample("n1", 0, T0)]}) == {
        "n1": CounterGrowth(0, False, 1),
        "n3": CounterGrowth(50 + 10 + 30, True, 4),
    }
    with pytest.raises(ValueError, match="filed under"):
        dropped_growth({"n1": samples})
    det = detector()
    assert det.observe_dropped(samples[:2]) == {"n3": CounterGrowth(50, False, 2)}
    det.mark_incident_closed(T0 + 5)  # no episode open: nothing to end, the baseline stays
    assert det.observe_dropped(samples[2:]) == {"n3": CounterGrowth(90, True, 4)}


def test_running_counter() -> None:
    counter = RunningCounter()
    assert counter.add(5, T0) and counter.add(9, T0 + 1) and not counter.add(1, T0)  # older: ignored
    assert counter.result() == CounterGrowth(4, False, 2)
    counter.rebase()
    assert counter.result() == CounterGrowth(0, False, 1) and counter.add(12, T0 + 2)
    assert counter.result() == CounterGrowth(3, False, 2)
    with pytest.raises(ValueError, match="negative"):
        counter.add(-1, T0 + 3)


# --- snapshot and config -------------------------------------------------------------------------------------------


def test_snapshot_for_metrics() -> None:
    sim = Sim(detector())
    sim.seconds(2, n1="F", n2="L")
    sim.det.observe_hints(series("n2", "n1:7000", (0, 0), (10_000, 5)))
    snap = sim.det.snapshot()
    assert snap.nodes["n1"] == NodeSnapshot(S, T0, 2, 0, 0, 0, None, TIMEOUT, T0 + 1, suspected_at=T0)
    assert snap.nodes["n2"] == NodeSnapshot(S, T0, 0, 0, 0, 0, 301.0, None, T0 + 1, suspected_at=T0)
    assert snap.nodes["n3"] == NodeSnapshot(H, None, 0, 0, 0, 0, 12.0, None, T0 + 1)
    assert (snap.hints["n1:7000"].created_growth, snap.hints["n1:7000"].level) == (10_000, HintSeverity.CRITICAL)
    assert (snap.episode_open, snap.episode_nodes, snap.pending_nodes, snap.all_healthy_since) == (False, (), (), None)
    flat = asdict(snap)
    assert flat["nodes"]["n1"]["state"] == "suspected" and flat["hints"]["n1:7000"]["level"] == "critical"
    sim.second(n1="F")
    snap = sim.det.snapshot()
    assert snap.nodes["n1"].state is C and snap.episode_open and snap.episode_nodes == ("n1",)


@pytest.mark.parametrize(
    ("config", "message"),
    [
        ({"probe_timeout_s": 0.0}, "probe_timeout_s"),
        ({"suspect_latency_ms": -1.0}, "suspect_latency_ms"),
        ({"suspect_latency_ms": float("nan")}, "suspect_latency_ms"),
        ({"incident_cooldown_s": 0.0}, "incident_cooldown_s"),
        ({"confirm_failures": 0}, "confirm_failures"),
        ({"recover_clean_probes": 0}, "recover_clean_probes"),
        ({"hint_alert": 0}, "hint_alert"),
        ({"hint_critical": 1000}, "hint_critical"),
        ({"hint_alert": 5000, "hint_critical": 4000}, "hint_critical"),
        ({"suspect_latency_ms": 500.0}, "probe timeout"),
        ({"probe_timeout_s": 0.2}, "probe timeout"),
    ],
)
def test_bad_config_is_rejected(config: dict[str, Any], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        DetectorConfig(**config)


def test_default_and_edge_configs_are_accepted() -> None:
    assert DetectorConfig() == DetectorConfig(0.5, 300.0, 3, 5, 1000, 10_000, 300.0)
    DetectorConfig(suspect_latency_ms=499.9, confirm_failures=1, recover_clean_probes=1, hint_alert=1, hint_critical=2)
