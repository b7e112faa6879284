"""Unit tests: one module per unit, plus the shared fakes (a moto server, paginated stubs, series
data)."""
