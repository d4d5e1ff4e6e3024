"""What a run shows a person: the HTML report, tables (CSV, Parquet, Excel) and run folders."""

from critflow.report.tables import write_tables

__all__ = ["write_tables"]
