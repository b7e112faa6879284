"""Whole local runs (`python -m local_run run`) on small demo lakes, with faults injected into the
source and the run."""
