//! Variational mode decomposition (Dragomiretskiy & Zosso 2014) of a real series, applied causally over rolling windows.
