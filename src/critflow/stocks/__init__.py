"""Dynamic stocks of products in use: lifetimes, cohorts, inflow- and stock-driven models."""

from critflow.stocks.dsm import StockResult, dynamic_stock, inflow_driven, stock_driven
from critflow.stocks.lifetimes import PARAMETERS, Lifetime

__all__ = [
    "PARAMETERS",
    "Lifetime",
    "StockResult",
    "dynamic_stock",
    "inflow_driven",
    "stock_driven",
]
