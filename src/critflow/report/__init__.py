"""What a run shows a person: tables written to disk (CSV, Parquet, Excel) and summaries."""

from critflow.report.tables import write_tables

__all__ = ["write_tables"]
