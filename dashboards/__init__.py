"""Analyst dashboards: Plotly pages built from the DuckDB tables, one module per page, written
as a static report folder that opens offline (``fleetproof dashboard``)."""

from dashboards.report import PAGES, Report, build_report

__all__ = ["PAGES", "Report", "build_report"]
