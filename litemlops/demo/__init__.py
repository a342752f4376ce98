"""The ride-hailing demo, an application on the platform (`demo.application`): its
config sections, seeded data generator, feature definitions, pipelines, set-up and
CLI commands. Nothing in the platform imports it; config names it."""
