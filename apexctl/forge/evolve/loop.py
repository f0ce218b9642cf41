"""The generation loop: selection, variation, (surrogate-filtered) true evaluation, hall of fame, checkpoint."""

from __future__ import annotations

import contextlib
import gc
import json
import random
import statistics
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import polars as pl

from apexctl.errors import InputError
from apexctl.forge import io
from apexctl.forge import surrogate as sae
from apexctl.forge.evolve.adversary import Adversary
from apexctl.forge.evolve.checkpoint import (
    State,
    absolute_inputs,
    discard_on_failure,
    prepare_output,
    read_checkpoint,
    restore_state,
    save_checkpoint,
)
from apexctl.forge.evolve.config import METRICS, EvolveConfig
from apexctl.forge.evolve.evaluator import Evaluator, EvaluatorFactory
from apexctl.forge.evolve.hall import Entry, Hall, pareto_front
from apexctl.forge.evolve.market import Market, close_prices, columns_of, load_market
from apexctl.forge.evolve.seeding import terminals_for
from apexctl.forge.evolve.selection import select_nsga2
from apexctl.forge.evolve.variation import initial_population, make_toolbox, vary
from apexctl.forge.gp import (
    Window,
    primitive_set,
    to_json,
)
from apexctl.schemas.tables import GENERATIONS


@dataclass
class Result:
    market: Market
    generations: pl.DataFrame
    hall_of_fame: list[dict[str, Any]]
    evaluations: int
    seconds: float
    pareto: list[dict[str, Any]] = field(default_factory=list)
    #: The apex.recycle requests the initial population was seeded from (recorded in hall_of_fame/index.json).
    seed_requests: list[dict[str, Any]] = field(default_factory=list)


def evolve(
    config: EvolveConfig,
    on_generation: Callable[[dict[str, Any]], None] | None = None,
    *,
    resume: bool = False,
    make_evaluator: EvaluatorFactory | None = None,
) -> Result:
    """Runs the evolution (or continues a checkpointed one with `resume`); deterministic for a given seed (Python's
    and NumPy's generators are seeded here, LightGBM is seeded, single-threaded and leaves them untouched).

    The expensive objective is screened by the surrogate when it is on: the backtest fitness alone, or with --dsg
    the simulator PnL (then every new tree is backtested, and its backtest metrics are surrogate features too)."""
    config.validate()
    # What the checkpoint records: the inputs as absolute paths, so --resume finds them from any directory.
    recorded = absolute_inputs(config)
    market = load_market(config.features, config.symbol, config.train_fraction)
    terminals = terminals_for(config, market)
    adversary = Adversary(config, market) if config.dual else None
    checkpoint = read_checkpoint(config.output) if resume else None
    # The hash of the bytes actually read (stdin's too), so a resumed run can be given the same table as a file.
    features_sha = market.sha256
    if checkpoint is not None and checkpoint["features_sha256"] != features_sha:
        raise InputError(
            f"{io.describe(config.features)}: not the features table the run started from (its sha256 is not the "
            "checkpoint's features_sha256); --resume needs the same table"
        )
    created = prepare_output(config.output, resume)
    with contextlib.ExitStack() as cleanup:
        cleanup.enter_context(discard_on_failure(config.output, resume, created))
        cleanup.callback(gc.unfreeze)
        pset = primitive_set(terminals.features)
        for k in terminals.windows:
            if all(t.value != k for t in pset.terminals[Window]):
                pset.addTerminal(k, Window)
        toolbox = make_toolbox(pset, config)
        evaluator = (
            Evaluator(market, config.backtest, ray=config.ray)
            if make_evaluator is None
            else make_evaluator(market, config.backtest)
        )
        featurizer = (
            sae.Featurizer(
                terminals.features, columns_of(market, terminals.features), close_prices(market), market.train_end
            )
            if config.surrogate
            else None
        )
        train = (0, market.train_end)
        started = time.perf_counter()
        evaluations = 0

        if checkpoint is not None:
            state = restore_state(checkpoint, config, pset, market, terminals)
        else:
            random.seed(config.seed)
            np.random.seed(config.seed % 2**32)
            state = State(
                generation=-1,
                population=initial_population(toolbox, pset, config, terminals.seeds),
                log=[],
                hall=Hall(config.hall_size, market, terminals.features),
                fraction=config.eval_fraction,
                surrogate=sae.Surrogate(config.seed) if config.surrogate else None,
            )

        for generation in range(state.generation + 1, config.gens + 1):
            tick = time.perf_counter()
            parents = state.population
            population = vary(parents, toolbox, config) if generation > 0 else parents
            invalid = [ind for ind in population if not ind.fitness.valid]
            for ind in invalid:
                ind.json = to_json(ind)
            # One representative per distinct text: the surrogate ranks texts, the evaluators score texts.
            unique: dict[str, Any] = {}
            for ind in invalid:
                unique.setdefault(ind.json, ind)
            texts = list(unique)
            position = {t: i for i, t in enumerate(texts)}
            causal: dict[str, float] = {}
            extra = None
            if adversary is not None:  # the backtest is the cheap objective: every new tree gets it
                metrics = evaluator.score(texts, train)
                causal = {t: m["fitness"] for t, m in zip(texts, metrics, strict=True)}
                # Shaped explicitly: a generation without new trees (no crossover or mutation happened) has no rows.
                extra = np.array([[m[k] for k in METRICS] for m in metrics], dtype=np.float64).reshape(
                    len(texts), len(METRICS)
                )

            def expensive(picked: list[str]) -> list[float]:
                if adversary is not None:
                    return adversary.score(picked)
                return [m["fitness"] for m in evaluator.score(picked, train)]

            used_fraction, corr = 1.0, None
            model = state.surrogate
            features = predicted = chosen = None
            truth: dict[str, float] = {}
            trained: list[int] = []  # rows the model has already been given this generation (the warm-up sample)
            picked = list(range(len(texts)))
            if model is not None and featurizer is not None:
                features = featurizer.rows(texts)
                if extra is not None:
                    features = np.hstack([features, extra])
                if not model.ready and len(texts) > sae.WARMUP_ROWS:
                    # No model yet and many trees: fit one on a random sample first, so it screens the rest already.
                    trained = sorted(random.sample(range(len(texts)), sae.WARMUP_ROWS))
                    truth.update(zip((texts[i] for i in trained), expensive([texts[i] for i in trained]), strict=True))
                    model.add(features[trained], [truth[texts[i]] for i in trained])
                    model.fit()
                if model.ready and texts:
                    used_fraction = state.fraction
                    rest = [i for i in range(len(texts)) if texts[i] not in truth]
                    predicted = model.predict(features)
                    screened = sae.screen(predicted[rest].tolist(), used_fraction, random)
                    chosen = sae.Screen([rest[i] for i in screened.evaluate], [rest[i] for i in screened.holdout])
                    picked = sorted([*trained, *chosen.evaluate])
            todo = [i for i in picked if texts[i] not in truth]
            truth.update(zip((texts[i] for i in todo), expensive([texts[i] for i in todo]), strict=True))
            if predicted is not None and chosen is not None:
                corr = sae.spearman(predicted[chosen.holdout].tolist(), [truth[texts[i]] for i in chosen.holdout])
            for ind in invalid:
                value = truth.get(ind.json)
                ind.estimated = value is None
                if value is None:
                    assert predicted is not None
                    value = float(predicted[position[ind.json]])
                ind.fitness.values = (causal[ind.json], value) if adversary is not None else (value,)
            if model is not None and features is not None:
                warmed = set(trained)
                fresh_rows = [i for i in picked if i not in warmed]
                model.add(features[fresh_rows], [truth[texts[i]] for i in fresh_rows])
                model.fit()
                if predicted is not None:
                    state.fraction = sae.next_fraction(
                        state.fraction, corr, config.eval_fraction, config.surrogate_min_corr
                    )
            if adversary is not None:
                population = select_nsga2(parents + population if generation > 0 else population, config.pop)
                fresh = [Entry(t, causal[t], len(unique[t]), unique[t].height, truth[t]) for t in truth]
                state.archive = pareto_front([*state.archive, *fresh])
            else:
                fresh = [Entry(t, truth[t], len(unique[t]), unique[t].height) for t in truth]
            state.hall.update(fresh)
            evaluations += len(picked)
            state.log.append(
                _log_row(generation, population, len(picked), len(texts) - len(picked), used_fraction, corr)
            )
            state.log[-1]["seconds"] = time.perf_counter() - tick
            state.population = population
            state.generation = generation
            save_checkpoint(recorded, state, features_sha)
            # The survivors live on for generations and hold no reference cycles (a tree is a flat list of shared
            # nodes): parked outside the collector, a full collection no longer walks 100,000 of them several times
            # a generation. Anything frozen that dies later is still freed by its reference count.
            gc.freeze()
            if on_generation is not None:
                on_generation(state.log[-1])

        fame = _rescore(state.hall.entries, evaluator, market)
        pareto = _rescore(state.archive, evaluator, market) if adversary is not None else []
        generations = pl.DataFrame(state.log, schema=GENERATIONS.polars_schema())
        return Result(market, generations, fame, evaluations, time.perf_counter() - started, pareto, terminals.requests)


def _log_row(
    generation: int, population: list[Any], evaluated: int, estimated: int, fraction: float, corr: float | None
) -> dict[str, Any]:
    """One generations.parquet row: fitness statistics over the truly evaluated members of the population."""
    causal = [ind.fitness.values[0] for ind in population if not ind.estimated or len(ind.fitness.values) > 1]
    adversarial = [ind.fitness.values[1] for ind in population if len(ind.fitness.values) > 1 and not ind.estimated]
    return {
        "generation": generation,
        "best": max(causal) if causal else float("nan"),
        "median": statistics.median(causal) if causal else float("nan"),
        "best_adversarial": max(adversarial) if adversarial else None,
        "median_adversarial": statistics.median(adversarial) if adversarial else None,
        "diversity": len({ind.json for ind in population}) / len(population),
        "evaluations": evaluated,
        "estimated": estimated,
        "eval_fraction": fraction,
        "surrogate_spearman": corr,
        "seconds": 0.0,
    }


def _rescore(entries: Sequence[Entry], evaluator: Evaluator, market: Market) -> list[dict[str, Any]]:
    """Entries with their training and held-out backtest metrics (and simulator PnL with --dsg), ranked."""
    texts = [e.text for e in entries]
    train_scores = evaluator.score(texts, (0, market.train_end))
    held_out = evaluator.score(texts, (market.train_end, market.rows))
    out = []
    for i, (e, tr, ho) in enumerate(zip(entries, train_scores, held_out, strict=True)):
        row = {"rank": i + 1, "tree": json.loads(e.text), "size": e.size, "height": e.height, "train": tr}
        row["held_out"] = ho
        if e.adversarial is not None:
            row["adversarial"] = {"mean_pnl": e.adversarial}
        out.append(row)
    return out
