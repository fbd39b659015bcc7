"""Listener quality: signals from a listener's answers, a reliability score, and flag rules.

Pure numpy, no Django: annotation/quality_services.py reads the answers from the database,
calls `assess`, and stores what it returns.

Design note. Every check a listener passes or fails is a Bernoulli trial whose success rate a
chance clicker holds at 1/3: a gold triplet answered right (the other track's snippet
picked), an answer that matches the consensus of the others on a triplet with enough votes,
and a repeated triplet answered the same way both times (shown in another order, so
pressing one position does not pass). The checks are pooled into one accuracy with a Beta
prior: mean `prior_accuracy` (0.5, between chance and a good listener) and `prior_strength`
pseudo-checks (20). The posterior mean maps linearly onto reliability, 0 at chance and 1 at
`good_accuracy` (0.7, about what an attentive listener scores against the consensus), clipped
to [0, 1]. A newcomer thus starts near 0.45, and three answers, right or wrong, move them by
under 0.2: neither trusted nor condemned.

Why this and not a full Dawid-Skene model: with three choices whose order is shuffled per
listener, a per-listener confusion matrix over slots has nothing to learn beyond one "skill"
number (the one-coin model), and a few dozen answers per listener estimate one number well
and a matrix badly. The consensus, though, is taken Dawid-Skene style: the others' votes on
a triplet are weighted by their own reliability, re-estimated for a few rounds, so a pack of
random clickers does not define what "the consensus" is.

Reliability only says how informative answers are. Two behaviours are caught by rules on
their own signals instead, because they can pass the checks by luck or by copying: answering
before the snippets were heard (`listen_ms` below the minimum) and answering with mostly one
displayed position. Rules need `min_answers` answers (or `min_checks` checks for low
reliability) before they fire, so a newcomer is never flagged on a handful.
"""

from dataclasses import dataclass, field

import numpy as np

CHANCE = 1 / 3  # success rate of a random answer on any check
NONE = -1  # "can't tell", or no gold answer / no original


@dataclass
class QualityConfig:
    prior_accuracy: float = 0.5  # Beta prior mean of a listener's check accuracy
    prior_strength: float = 20.0  # pseudo-checks behind the prior
    good_accuracy: float = 0.7  # accuracy that earns reliability 1
    consensus_votes: int = 3  # others' votes a triplet needs before it is a check
    rounds: int = 3  # reliability-weighted consensus re-estimations
    min_listen_ms: int = 4000  # ms each snippet must be heard before answering
    min_reliability: float = 0.25  # flag below this ...
    min_checks: int = 15  # ... once this many checks are in
    max_fast_share: float = 0.5  # flag when more answers than this came before listening
    max_position_share: float = 0.8  # flag when one displayed position takes this share
    min_answers: int = 10  # answers before the fast and position rules apply


@dataclass
class Answers:
    """N answers (judgments), one entry per array row.

    `odd` is the slot chosen (NONE: can't tell), `position` the displayed position chosen,
    `gold` the gold triplet's odd slot (NONE: not gold), `repeat_of` the row this answer
    repeats (NONE: an original), `listened_ms` the shortest time any snippet was heard, and
    `votes` whether the answer may count towards the consensus others are checked against.
    """

    listener: np.ndarray  # (N,) int, 0..L-1
    triplet: np.ndarray  # (N,) int
    odd: np.ndarray  # (N,) int
    position: np.ndarray  # (N,) int
    gold: np.ndarray  # (N,) int
    repeat_of: np.ndarray  # (N,) int
    listened_ms: np.ndarray  # (N,) int
    votes: np.ndarray  # (N,) bool

    def __len__(self) -> int:
        return len(self.listener)


@dataclass
class Assessment:
    """Per listener (L,): the signals, the reliability, and the reasons to flag (if any);
    per answer (N,): whether it came before the snippets were heard."""

    signals: list[dict] = field(default_factory=list)
    reliability: np.ndarray = field(default_factory=lambda: np.zeros(0))
    reasons: list[list[str]] = field(default_factory=list)
    too_fast: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=bool))


def reliability_from_checks(
    passed: np.ndarray, checks: np.ndarray, config: QualityConfig
) -> np.ndarray:
    """Reliability (L,) in [0, 1] from checks passed out of checks made (Beta-smoothed)."""
    a = config.prior_accuracy * config.prior_strength
    accuracy = (np.asarray(passed, float) + a) / (np.asarray(checks, float) + config.prior_strength)
    return np.clip((accuracy - CHANCE) / (config.good_accuracy - CHANCE), 0.0, 1.0)


def consensus_checks(
    answers: Answers, weights: np.ndarray, min_votes: int
) -> tuple[np.ndarray, np.ndarray]:
    """Per answer (N,): whether it can be checked against the others' consensus, and whether
    it matches it. The consensus on a triplet is the slot with the largest sum of the others'
    `weights` (per listener); a tie for the top counts as a match."""
    n = len(answers)
    answered = (answers.odd != NONE) & (answers.gold == NONE) & (answers.repeat_of == NONE)
    voting = answers.votes & (answers.odd != NONE)
    triplets, t = np.unique(answers.triplet, return_inverse=True)
    tally = np.zeros((len(triplets), 3))
    count = np.zeros(len(triplets))
    vote_weight = weights[answers.listener] * voting
    np.add.at(tally, (t[voting], answers.odd[voting]), vote_weight[voting])
    np.add.at(count, t[voting], 1)
    # The others: the triplet's tally without this answer's own vote.
    others = tally[t].copy()
    own = np.flatnonzero(voting)
    others[own, answers.odd[own]] -= vote_weight[own]
    others_count = count[t] - voting
    checkable = answered & (others_count >= min_votes) & (others.max(axis=1) > 0)
    mine = others[np.arange(n), np.where(answers.odd == NONE, 0, answers.odd)]
    matches = checkable & np.isclose(mine, others.max(axis=1))
    return checkable, matches


def assess(answers: Answers, n_listeners: int, config: QualityConfig) -> Assessment:
    """Signals, reliability and flag reasons of `n_listeners` listeners from their answers."""
    who = answers.listener
    per = np.bincount  # sums per listener

    def total(mask: np.ndarray) -> np.ndarray:
        return per(who[mask], minlength=n_listeners).astype(int)

    answered = answers.odd != NONE
    gold = answered & (answers.gold != NONE) & (answers.repeat_of == NONE)
    gold_right = gold & (answers.odd == answers.gold)
    repeated = answered & (answers.repeat_of != NONE)
    original = np.where(repeated, answers.repeat_of, 0)
    repeated &= answers.odd[original] != NONE
    same = repeated & (answers.odd == answers.odd[original])
    fixed_checks, fixed_passed = total(gold) + total(repeated), total(gold_right) + total(same)

    weights = reliability_from_checks(np.zeros(n_listeners), np.zeros(n_listeners), config)
    for _ in range(max(1, config.rounds)):
        checkable, matches = consensus_checks(answers, weights, config.consensus_votes)
        checks = fixed_checks + total(checkable)
        passed = fixed_passed + total(matches)
        weights = reliability_from_checks(passed, checks, config)

    too_fast = answers.listened_ms < config.min_listen_ms
    n_answers = total(np.ones(len(answers), dtype=bool))
    positions = np.zeros((n_listeners, 3), dtype=int)
    np.add.at(positions, (who[answered], answers.position[answered]), 1)
    n_positioned = positions.sum(axis=1)
    top_share = positions.max(axis=1) / np.maximum(n_positioned, 1)
    fast_share = total(too_fast) / np.maximum(n_answers, 1)

    counts = {
        "answers": n_answers,
        "gold": total(gold),
        "gold_right": total(gold_right),
        "repeats": total(repeated),
        "repeats_same": total(same),
        "consensus": total(checkable),
        "consensus_agreed": total(matches),
        "checks": checks,
        "checks_passed": passed,
    }
    out = Assessment(reliability=weights, too_fast=too_fast)
    for i in range(n_listeners):
        signals = {name: int(values[i]) for name, values in counts.items()}
        signals["fast_share"] = round(float(fast_share[i]), 3)
        signals["top_position_share"] = round(float(top_share[i]), 3)
        out.signals.append(signals)
        out.reasons.append(flag_reasons(signals, float(weights[i]), config))
    return out


def flag_reasons(signals: dict, reliability: float, config: QualityConfig) -> list[str]:
    """Why a listener with these signals should be flagged; empty when they should not."""
    reasons = []
    if signals["checks"] >= config.min_checks and reliability < config.min_reliability:
        reasons.append(
            f"low reliability {reliability:.2f} < {config.min_reliability:.2f}: passed "
            f"{signals['checks_passed']} of {signals['checks']} checks"
        )
    if signals["answers"] >= config.min_answers:
        if signals["fast_share"] > config.max_fast_share:
            reasons.append(
                f"answered before listening: {signals['fast_share']:.0%} of answers "
                f"(more than {config.max_fast_share:.0%})"
            )
        if signals["top_position_share"] >= config.max_position_share:
            reasons.append(
                f"one position: {signals['top_position_share']:.0%} of answers "
                f"(at least {config.max_position_share:.0%})"
            )
    return reasons
