"""Spatial layers: the bundled data, loading, spatial indexes, nearby queries, drive time, population."""
