"""The ride-hailing demo: seeded data generator and the demo's feature definitions."""
