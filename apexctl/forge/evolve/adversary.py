"""Adversarial fitness (--dsg): each tree traded in the DSG-populated simulator."""

from __future__ import annotations

from collections.abc import Sequence

from apexctl.forge.evolve.config import BATCH, EvolveConfig
from apexctl.forge.evolve.market import Market


class Adversary:
    """Adversarial fitness (--dsg): each tree traded in the DSG-populated simulator, mean PnL over the seeds."""

    def __init__(self, config: EvolveConfig, market: Market) -> None:
        from apexctl.forge.dual import dsg_text
        from apexctl.forge.sim import INSTRUMENTS, check_symbol

        self.dsg = None if config.dsg in (None, "default") else dsg_text(config.dsg)
        self.seeds = list(config.sim_seeds)
        self.hours = config.sim_hours
        self.symbol = config.sim_symbol or (market.symbol if market.symbol in INSTRUMENTS else "BTCUSDT")
        check_symbol(self.symbol, "--sim-symbol")
        self.options = market.sim_options()
        self.cache: dict[str, float] = {}

    def score(self, trees: Sequence[str]) -> list[float]:
        from apexctl.forge.dual import adversarial_fitness

        todo = list(dict.fromkeys(t for t in trees if t not in self.cache))
        for first in range(0, len(todo), BATCH):
            chunk = todo[first : first + BATCH]
            result = adversarial_fitness(chunk, self.dsg, self.seeds, self.hours, self.symbol, **self.options)
            self.cache.update(zip(chunk, (float(v) for v in result.mean_pnl), strict=True))
        return [self.cache[t] for t in trees]
