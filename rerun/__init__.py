"""Re-run a data day, or backfill a range, on the deployed pipeline: `python -m rerun`."""
