"""apexctl: evolve crypto trading strategies offline and run them live on Bybit, on one Rust core."""

__version__ = "0.1.0"
